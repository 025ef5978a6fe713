"""Real servers on loopback for the scale-out tests, started by the tests themselves:
PostgreSQL from the system packages (initdb + pg_ctl in a temporary folder, as a non-root
user: PostgreSQL refuses to run as root) for the DuckLake catalog, and moto's S3-compatible
server for the lake's data and the drop folder. A machine without them skips these tests with
a message saying what to install; CI installs both (.ci/run)."""
from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


@dataclass
class Postgres:
    port: int
    control: list[str]  # pg_ctl with its data folder, run as the server's user
    options: list[str]  # how to start it: the log file, the port, the socket folder
    user: str = "polyrecon"

    def catalog(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user={self.user}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.catalog("postgres"), autocommit=True) as session:
            session.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            session.execute(f'CREATE DATABASE "{name}"')
        return self.catalog(name)

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run([*self.control, *args], check=True, capture_output=True)

    def restart(self) -> None:
        """A restart as an operator's (`-m fast`): every session is ended, the server is back
        on the same port when this returns."""
        self._pg_ctl("-w", "-t", "60", "-m", "fast", *self.options, "restart")

    def stop(self) -> None:
        self._pg_ctl("-w", "-t", "60", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-t", "60", *self.options, "start")


def start_postgres(folder: Path):
    """A PostgreSQL server in `folder` on a free loopback port; yields a Postgres, stops it."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (no pg_ctl): `apt-get install -y postgresql` "
                    "to run the DuckLake tests")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the server runs as an unprivileged user
        account = next((name for name in ("postgres", "nobody") if _exists(name)), None)
        if account is None or shutil.which("runuser") is None:
            pytest.skip("running as root with no 'postgres' or 'nobody' user to start "
                        "PostgreSQL as")
        run_as = ["runuser", "-u", account, "--"]
        shutil.chown(folder, account)
    data, port = folder / "data", free_port()
    subprocess.run([*run_as, str(binaries / "initdb"), "-D", str(data), "-U", "polyrecon",
                    "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                   capture_output=True)
    server = Postgres(
        port, [*run_as, str(binaries / "pg_ctl"), "-D", str(data)],
        ["-l", str(folder / "server.log"), "-o",
         f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
         f"-c max_connections=200"])
    server.start()
    try:
        yield server
    finally:
        subprocess.run([*server.control, "-m", "immediate", "stop"], check=False,
                       capture_output=True)


def _exists(account: str) -> bool:
    try:
        pwd.getpwnam(account)
        return True
    except KeyError:
        return False


@dataclass
class S3:
    endpoint: str
    key: str = "polyrecon-test"
    secret: str = "polyrecon-test-secret"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name="us-east-1")

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


def start_s3():
    """moto's S3 server on a free loopback port; yields an S3, stops it."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("moto[server] is not installed: install requirements.txt to run the "
                    "object-storage tests")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield S3(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def on_ducklake(home, catalog: str, data_path: str):
    partner = home / "config" / "partner.yaml"
    settings = yaml.safe_load(partner.read_text(encoding="utf-8")) if partner.exists() else {}
    settings = settings or {}
    settings["warehouse"] = {"ducklake": {"catalog": catalog, "data_path": data_path}}
    partner.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True),
                       encoding="utf-8")
    return home
