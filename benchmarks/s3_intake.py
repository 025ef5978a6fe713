"""Benchmark: taking in uploads from the S3 drop folder (issue 29, 15).

Run: `.venv/bin/python benchmarks/s3_intake.py --objects 1000`. It starts moto's S3 server in
this process (as tests/scaleout/servers.py does), makes the robustness suite's small demo
workspace (four customers) with partner.yaml `drop_folder` on that server, uploads `--objects`
small valid Lens exports spread over the customers, and times one `ingest` in a child process
(Python start and imports included): the time the job holds the workspace lock. `--local`
also times the same files from the local inbox, the part of that which is not S3's.
`--code DIR` runs the pipeline of another checkout (e.g. `git archive main` unpacked): the
before and after of a change, on the same machine. Not a test: nothing here is asserted.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "robustness"),
                str(ROOT / "tests" / "scaleout")]
MONTH = "2026-10"
BUCKET = "bench-drop"


def workspace(root: Path) -> Path:
    """The small demo with an empty inbox."""
    from harness import small_demo

    home = small_demo(root / "ws")
    shutil.rmtree(home / "inbox")
    (home / "inbox").mkdir()
    return home


def exports(count: int, customers: list[str]) -> dict[str, bytes]:
    """`count` distinct small Lens exports for MONTH: <customer>/<name> → content."""
    return {f"{customers[i % len(customers)]}/bench-{i:05d}-{MONTH}.csv":
            (f"serial_number,device_model\nBENCH{i:05d}A,Poly Studio X30\n"
             f"BENCH{i:05d}B,Poly Studio X30\n").encode() for i in range(count)}


def ingest(home: Path, code: Path, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines", "ingest", "--month", MONTH,
                           "--home", str(home)], cwd=code, capture_output=True, text=True,
                          env={**os.environ, **env}, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"ingest failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def s3_intake(root: Path, files: dict[str, bytes], code: Path) -> float:
    from servers import start_s3

    home = workspace(root)
    partner = home / "config" / "partner.yaml"
    settings = yaml.safe_load(partner.read_text(encoding="utf-8")) or {}
    settings["drop_folder"] = {"inbox": f"s3://{BUCKET}/inbox/",
                               "archive": f"s3://{BUCKET}/archive/",
                               "quarantine": f"s3://{BUCKET}/quarantine/"}
    partner.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True),
                       encoding="utf-8")
    server = start_s3()
    s3 = next(server)
    try:
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: client.put_object(
                Bucket=BUCKET, Key=f"inbox/{item[0]}", Body=item[1]), files.items()))
        seconds = ingest(home, code, s3.env)
        left = client.list_objects_v2(Bucket=BUCKET, Prefix="inbox/").get("KeyCount", 0)
        kept = sum(page.get("KeyCount", 0) for page in client.get_paginator(
            "list_objects_v2").paginate(Bucket=BUCKET, Prefix="archive/"))
        if left or kept != len(files):
            sys.exit(f"the intake left {left} objects in the inbox and kept {kept} of "
                     f"{len(files)}")
        return seconds
    finally:
        server.close()


def local_intake(root: Path, files: dict[str, bytes], code: Path) -> float:
    home = workspace(root)
    for name, content in files.items():
        path = home / "inbox" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
    return ingest(home, code, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose pipeline runs (default: this one)")
    parser.add_argument("--local", action="store_true",
                        help="also time the same files from the local inbox")
    args = parser.parse_args()
    from harness import KEPT_CUSTOMERS

    files = exports(args.objects, list(KEPT_CUSTOMERS))
    with tempfile.TemporaryDirectory(prefix="polyrecon-s3-bench-") as scratch:
        rows = [("S3 drop folder", s3_intake(Path(scratch) / "s3", files, args.code))]
        if args.local:
            rows.append(("local inbox", local_intake(Path(scratch) / "local", files,
                                                     args.code)))
    print(f"code: {args.code}")
    print(f"{'intake':<16}{'objects':>8}{'seconds':>10}{'s/object':>10}")
    for what, seconds in rows:
        print(f"{what:<16}{len(files):>8}{seconds:>10.1f}{seconds / len(files):>10.4f}")


if __name__ == "__main__":
    main()
