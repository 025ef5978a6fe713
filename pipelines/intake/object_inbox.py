"""The drop folder on object storage (partner.yaml `drop_folder`: s3:// prefixes for the inbox,
the archive and quarantine): uploads are taken exactly once, as from the local inbox.

S3 has no atomic rename, so claiming works differently from inbox.py, in three steps, each of
which a crash may interrupt:

1. claim: a marker `<inbox>.claims/<customer>/<name>` is written with a conditional PUT
   (`If-None-Match: *`: of two writers one wins). The job holds the workspace lock for the
   customer (warehouse/run_lock.py), so a marker it finds was left by a run that died: it
   takes that claim over, and knows the upload may have been taken in already;
2. take: the upload is downloaded into the local inbox and taken in there by take.py, as any
   upload (validated, loaded or quarantined, archived locally). A taken-over claim whose
   content the warehouse has from this very upload is not taken in twice;
3. settle: the local archived or quarantined copy (with its reason file) is uploaded to the
   archive or quarantine prefix and read back; only when its SHA-256 matches is the upload
   deleted from the inbox — conditionally on its ETag, so an upload replaced in the meantime
   stays for the next run — and then the marker.

An upload is therefore never deleted before its kept copy is verified, and never counted twice.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.core.errors import ConfigError, RunError
from pipelines.core.files import free_path
from pipelines.core.workspace import Workspace
from pipelines.warehouse.connection import open_warehouse, run_sql, warehouse_exists

log = logging.getLogger("polyrecon")
CLAIMS = ".claims/"
MAX_UPLOAD_BYTES = 2 << 30  # an export larger than 2 GiB is not a Lens export: left alone


@dataclass(frozen=True)
class Prefix:
    bucket: str
    key: str  # ends with "/" (or is empty: the whole bucket)

    @classmethod
    def parse(cls, url: str, name: str) -> Prefix:
        if not url.startswith("s3://") or len(url) <= 5:
            raise ConfigError(f"drop_folder.{name} must be an s3:// address (s3://bucket/"
                              f"prefix/); leave it out for the workspace's {name}/ folder")
        bucket, _, key = url[5:].partition("/")
        return cls(bucket, key if not key or key.endswith("/") else key + "/")

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class Fetched:
    key: str        # the upload's key in the inbox bucket
    etag: str
    relative: str   # <customer>/<name> (or <name>) below the inbox
    customer_id: str | None
    sha256: str
    recovered: bool  # its claim was left by a run that stopped


class DropFolder:
    """The three prefixes, with an S3 client (credentials and endpoint from AWS_* variables)."""

    def __init__(self, settings):
        import boto3
        from botocore.config import Config as BotoConfig

        self.inbox = Prefix.parse(settings.inbox, "inbox")
        self.archive = Prefix.parse(settings.archive, "archive")
        self.quarantine = Prefix.parse(settings.quarantine, "quarantine")
        self.s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"),
                               config=BotoConfig(connect_timeout=10, read_timeout=120,
                                                 retries={"max_attempts": 5, "mode": "standard"}))

    def uploads(self, customer_id: str | None) -> list[dict]:
        """The uploads waiting, oldest first; hidden names and claims skipped."""
        start = self.inbox.key + (f"{customer_id}/" if customer_id else "")
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.inbox.bucket, Prefix=start):
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.inbox.key):]
                parts = relative.split("/")
                if len(parts) > 2 or any(p.startswith((".", "~$")) or not p for p in parts):
                    continue  # claims, folders in folders, the system's own files
                if item["Size"] > MAX_UPLOAD_BYTES:
                    log.warning("%s is %d bytes, more than a Lens export can be: left where it "
                                "is", self.inbox.url(item["Key"]), item["Size"])
                    continue
                found.append(item)
        return sorted(found, key=lambda item: (item["LastModified"], item["Key"]))

    def claim(self, relative: str, etag: str) -> bool:
        """Write the claim marker; True when a stopped run had claimed it already."""
        from botocore.exceptions import ClientError

        marker = json.dumps({"etag": etag, "host": socket.gethostname(), "pid": os.getpid(),
                             "claimed_at": datetime.now(UTC).isoformat()}).encode()
        key = self.inbox.key + CLAIMS + relative
        try:
            self.s3.put_object(Bucket=self.inbox.bucket, Key=key, Body=marker, IfNoneMatch="*")
            return False
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
        # This job holds the customer's lock: whoever wrote the marker is gone.
        self.s3.put_object(Bucket=self.inbox.bucket, Key=key, Body=marker)
        return True

    def release(self, relative: str) -> None:
        self.s3.delete_object(Bucket=self.inbox.bucket, Key=self.inbox.key + CLAIMS + relative)

    def keep(self, local: Path, prefix: Prefix, key: str) -> None:
        """Upload `local` to `prefix` + `key` and read it back: RunError unless it matches."""
        data = local.read_bytes()
        target = prefix.key + key
        self.s3.put_object(Bucket=prefix.bucket, Key=target, Body=data)
        stored = self.s3.get_object(Bucket=prefix.bucket, Key=target)["Body"].read()
        if hashlib.sha256(stored).digest() != hashlib.sha256(data).digest():
            raise RunError(f"the copy of {local.name} at {prefix.url(target)} does not read back "
                           f"as written; the upload stays in the inbox: run again")


def fetch_uploads(workspace: Workspace, drop: DropFolder, customer_id: str | None
                  ) -> list[Fetched]:
    """Claim the waiting uploads and put each into the local inbox for take.py (a claim taken
    over whose upload the warehouse already holds is only settled, not taken in again)."""
    fetched = []
    for item in drop.uploads(customer_id):
        relative = item["Key"][len(drop.inbox.key):]
        customer = relative.split("/")[0] if "/" in relative else None
        recovered = drop.claim(relative, item["ETag"])
        body = drop.s3.get_object(Bucket=drop.inbox.bucket, Key=item["Key"],
                                  IfMatch=item["ETag"])["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        entry = Fetched(item["Key"], item["ETag"], relative, customer, digest, recovered)
        fetched.append(entry)
        if recovered and _taken(workspace, entry) is not None:
            log.info("%s was taken in by a run that stopped: settling it", relative)
            continue
        local = workspace.inbox / relative
        if recovered and local.exists() and _sha256(local) == digest:
            continue  # downloaded by the run that stopped, not yet taken in
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.download")
        partial.write_bytes(body)
        modified = item["LastModified"].timestamp()
        os.utime(partial, (modified, modified))  # the month of a name without one
        os.replace(partial, free_path(local) if local.exists() else local)
    return fetched


def settle_uploads(workspace: Workspace, drop: DropFolder, fetched: list[Fetched]) -> None:
    """Keep each taken upload's copy in the archive or quarantine prefix, verified, then
    remove the upload and its claim. One left waiting locally is given back to its claim."""
    from botocore.exceptions import ClientError

    for entry in fetched:
        taken = _taken(workspace, entry)
        if taken is None:  # still being written, say: the upload stays, the local copy goes
            local = workspace.inbox / entry.relative
            if local.exists() and _sha256(local) == entry.sha256:
                local.unlink()
            drop.release(entry.relative)
            continue
        stored = workspace.home / taken
        folder, _, rest = taken.partition("/")
        prefix = drop.archive if folder == "archive" else drop.quarantine
        drop.keep(stored, prefix, rest)
        for sidecar in (".reason.txt", ".rejected.csv"):
            beside = stored.with_name(stored.name + sidecar)
            if folder == "quarantine" and beside.exists():
                drop.keep(beside, prefix, rest + sidecar)
        rejected = workspace.quarantine / (entry.customer_id or "") / f"{stored.name}.rejected.csv"
        if folder == "archive" and rejected.exists():
            drop.keep(rejected, drop.quarantine, workspace.relative(rejected).partition("/")[2])
        try:
            drop.s3.delete_object(Bucket=drop.inbox.bucket, Key=entry.key, IfMatch=entry.etag)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
            log.info("%s was replaced while it was taken in: the new upload waits for the "
                     "next run", entry.relative)
        drop.release(entry.relative)
        log.info("%s kept as %s", drop.inbox.url(entry.key), prefix.url(prefix.key + rest))


def _taken(workspace: Workspace, entry: Fetched) -> str | None:
    """Where the warehouse says this upload's content went (relative to the workspace)."""
    if not warehouse_exists(workspace):
        return None
    name = entry.relative.rsplit("/", 1)[-1]
    with open_warehouse(workspace, read_only=True) as con:
        rows = run_sql(con, "intake/drop_folder_taken.sql", customer_id=entry.customer_id,
                       sha256=entry.sha256, file_name=name).fetchall()
    return rows[0][0] if rows else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
