"""The drop folder on object storage (partner.yaml `drop_folder`: s3:// prefixes for the inbox,
the archive and quarantine): uploads are taken exactly once, as from the local inbox.

S3 has no atomic rename, so claiming works differently from inbox.py, in three steps, each of
which a crash may interrupt:

1. claim: a marker `<inbox>.claims/<customer>/<name>` is written with a conditional PUT
   (`If-None-Match: *`). The job holds the workspace lock for the customer
   (warehouse/run_lock.py), which is what keeps two runs apart; a marker it finds was left by
   a run that died, and the claim is taken over keeping its first time;
2. take: the upload is streamed into the local inbox and taken in there by take.py, as any
   upload (validated, loaded or quarantined, archived locally). One whose content is waiting
   or claimed locally already, or which the warehouse took in for the customer since the
   claim began, is not fetched again: a run after a crash, or after a commit conflict, goes
   on where the last one stopped;
3. settle: the local archived or quarantined copy (with its reason file) is uploaded to the
   archive or quarantine prefix, never over another object, and read back; only when its
   SHA-256 matches is the upload deleted — conditionally on its ETag, so an upload replaced
   in the meantime stays for the next run — and then the marker.

An upload is therefore never deleted before its kept copy is verified, and never counted twice.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.exceptions import ClientError

from pipelines.core.errors import RunError
from pipelines.core.files import free_path
from pipelines.core.visible import visible
from pipelines.core.workspace import Workspace
from pipelines.intake.inbox import CLAIMED, NO_CUSTOMER, sha256_of
from pipelines.warehouse.connection import open_warehouse, run_sql, warehouse_exists

log = logging.getLogger("polyrecon")
CLAIMS = ".claims/"
# A Lens export of the largest tenant is tens of MB: an object over this is no export, left alone.
MAX_UPLOAD_BYTES = 1 << 30


@dataclass(frozen=True)
class Prefix:
    bucket: str
    key: str  # ends with "/" (or is empty: the whole bucket)

    @classmethod
    def parse(cls, url: str) -> Prefix:
        """An s3:// address partner.yaml's settings checked (core/config.py)."""
        bucket, _, key = url.removeprefix("s3://").partition("/")
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
    claimed_at: datetime  # when it was first claimed (UTC): what the run took in since counts


class DropFolder:
    """The three prefixes, with an S3 client (credentials and endpoint from AWS_* variables)."""

    def __init__(self, settings):
        import boto3
        from botocore.config import Config as BotoConfig

        self.inbox = Prefix.parse(settings.inbox)
        self.archive = Prefix.parse(settings.archive)
        self.quarantine = Prefix.parse(settings.quarantine)
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

    def claim(self, relative: str, etag: str) -> datetime:
        """Write the claim marker; when it was first claimed. A marker already there was left
        by a run that stopped (this job holds the customer's lock, so its writer is gone): the
        claim is taken over, keeping its time."""
        now = datetime.now(UTC)
        key = self.inbox.key + CLAIMS + relative
        try:
            self.s3.put_object(Bucket=self.inbox.bucket, Key=key, IfNoneMatch="*",
                               Body=_marker(etag, now))
            return now
        except ClientError as error:
            if not _precondition_failed(error):
                raise
        try:
            first = datetime.fromisoformat(json.loads(self.s3.get_object(
                Bucket=self.inbox.bucket, Key=key)["Body"].read())["claimed_at"])
        except (ValueError, KeyError, TypeError):  # a marker of someone else's: from now
            first = now
        self.s3.put_object(Bucket=self.inbox.bucket, Key=key, Body=_marker(etag, first))
        return first

    def release(self, relative: str) -> None:
        self.s3.delete_object(Bucket=self.inbox.bucket, Key=self.inbox.key + CLAIMS + relative)

    def download(self, key: str, etag: str, target: Path) -> str | None:
        """The upload streamed into `target`; its SHA-256, or None when it was replaced
        since it was listed (the new one waits for the next run)."""
        try:
            body = self.s3.get_object(Bucket=self.inbox.bucket, Key=key, IfMatch=etag)["Body"]
        except ClientError as error:
            if _precondition_failed(error):
                return None
            raise
        digest = hashlib.sha256()
        with target.open("wb") as handle:
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
        return digest.hexdigest()

    def keep(self, local: Path, prefix: Prefix, key: str) -> None:
        """Upload `local` to `prefix` + `key` (never over another file) and read it back:
        RunError unless it reads back as the local file."""
        wanted, target = sha256_of(local), prefix.key + key
        try:
            with local.open("rb") as handle:
                self.s3.put_object(Bucket=prefix.bucket, Key=target, Body=handle,
                                   IfNoneMatch="*")
        except ClientError as error:
            if not _precondition_failed(error):
                raise  # there already: kept by a run that stopped, if it reads back the same
        digest = hashlib.sha256()
        for chunk in self.s3.get_object(Bucket=prefix.bucket, Key=target)["Body"].iter_chunks(
                1 << 20):
            digest.update(chunk)
        if digest.hexdigest() != wanted:
            raise RunError(f"{prefix.url(target)} does not read back as {local.name} (another "
                           f"file of that name is kept there?); the upload stays in the inbox: "
                           f"move that object aside and run again")


def _marker(etag: str, claimed_at: datetime) -> bytes:
    return json.dumps({"etag": etag, "host": socket.gethostname(), "pid": os.getpid(),
                       "claimed_at": claimed_at.isoformat()}).encode()


def _precondition_failed(error) -> bool:
    return error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412")


def fetch_uploads(workspace: Workspace, drop: DropFolder, customer_id: str | None
                  ) -> list[Fetched]:
    """Claim the waiting uploads and put each into the local inbox for take.py. One whose
    content is there already (downloaded or claimed locally by a run that stopped, or by
    this job's attempt a commit conflict ended) is not fetched again, and one the warehouse
    took in since its claim is only settled."""
    fetched = []
    for item in drop.uploads(customer_id):
        relative = item["Key"][len(drop.inbox.key):]
        customer = relative.split("/")[0] if "/" in relative else None
        claimed_at = drop.claim(relative, item["ETag"])
        local = workspace.inbox / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.download")
        digest = drop.download(item["Key"], item["ETag"], partial)
        if digest is None:
            drop.release(relative)
            continue
        entry = Fetched(item["Key"], item["ETag"], relative, customer, digest, claimed_at)
        fetched.append(entry)
        if _taken(workspace, entry) is not None or _local_copy(workspace, entry) is not None:
            partial.unlink()
            continue
        modified = item["LastModified"].timestamp()
        os.utime(partial, (modified, modified))  # the month of a name without one
        os.replace(partial, free_path(local) if local.exists() else local)
    return fetched


def _local_copy(workspace: Workspace, entry: Fetched) -> Path | None:
    """A file of the upload's content waiting in the local inbox or claimed there."""
    folders = (workspace.inbox / (entry.customer_id or ""),
               workspace.inbox / CLAIMED / (entry.customer_id or NO_CUSTOMER))
    candidates = [p for folder in folders if folder.is_dir() for p in folder.iterdir()
                  if p.is_file() and not p.is_symlink() and not p.name.startswith(".")]
    return next((p for p in candidates if sha256_of(p) == entry.sha256), None)


def settle_uploads(workspace: Workspace, drop: DropFolder, fetched: list[Fetched]) -> None:
    """Keep each taken upload's copy in the archive or quarantine prefix, verified, then
    remove the upload and its claim. One left waiting locally is given back to its claim."""
    for entry in fetched:
        taken = _taken(workspace, entry)
        if taken is None:  # left waiting: the upload stays, the local copy goes
            local = _local_copy(workspace, entry)
            if local is not None and CLAIMED not in local.parts:
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
            if not _precondition_failed(error):
                raise
            log.info("%s was replaced while it was taken in: the new upload waits for the "
                     "next run", visible(entry.relative))
        drop.release(entry.relative)
        log.info("%s kept as %s", visible(drop.inbox.url(entry.key)),
                 visible(prefix.url(prefix.key + rest)))


# A worker's clock may run behind the one that claimed the upload first.
_CLOCK_MARGIN = timedelta(minutes=1)


def _taken(workspace: Workspace, entry: Fetched) -> str | None:
    """Where the warehouse says this upload went — its content taken in for its customer
    since it was claimed — relative to the workspace; None if it was not."""
    if not warehouse_exists(workspace):
        return None
    since = (entry.claimed_at - _CLOCK_MARGIN).astimezone(UTC).replace(tzinfo=None)
    with open_warehouse(workspace, read_only=True) as con:
        rows = run_sql(con, "intake/drop_folder_taken.sql", customer_id=entry.customer_id,
                       sha256=entry.sha256, since=since).fetchall()
    return rows[0][0] if rows else None
