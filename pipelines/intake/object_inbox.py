"""The drop folder on object storage (partner.yaml `drop_folder`: s3:// prefixes for the inbox,
the archive and quarantine): uploads are taken exactly once, by the local inbox's rules.

S3 has no atomic rename, so claiming works differently from inbox.py, in three steps, each of
which a crash may interrupt:

1. claim: a marker `<inbox>.claims/<customer>/<name>` is written with a conditional PUT
   (`If-None-Match: *`). The job holds the workspace lock for the customer
   (warehouse/run_lock.py), which is what keeps two runs apart; a marker it finds was left by
   a run that died, and the claim is taken over keeping its first time;
2. take: the upload is streamed into the local inbox and taken in there by take.py, as any
   upload (validated, loaded or quarantined, archived locally): a duplicate is the same
   content for the same customer and month, whatever the other upload's name. An object name
   is no file name: one a file system does not take (too long, a NUL) is taken in under a
   local name of our own (`local_names`), and the intake record keeps the upload's own name.
   One waiting or claimed locally already under its local name with its content, or which the
   warehouse took in under its name since the claim began, is not put there again: a run
   after a crash, or after a commit conflict, goes on where the last one stopped;
3. settle: the local archived or quarantined copy (with its reason file) of the upload's own
   intake record is uploaded to the archive or quarantine prefix, never over another object,
   and verified (S3's MD5 of what it stored, else read back); only when it matches is the
   upload deleted — conditionally on its ETag, so an upload replaced in the meantime stays for
   the next run — and then the marker.

An upload is therefore never deleted before its kept copy is verified, never settled from
another upload's record (the same bytes under another name, or for another month, are another
upload), and never counted twice. An upload deleted between the listing and its download is
passed over. The network calls run WORKERS at once and the warehouse is read once per step:
a thousand uploads would otherwise hold the workspace lock for many minutes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
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
# Local names stay this short: a file system takes 255 bytes, and the archive and quarantine
# add " (2)", ".reason.txt", ".rejected.csv" and the download's "." and ".download".
NAME_BYTES = 200
# Network calls at once (claims, downloads, kept copies, deletions): boto3's client is
# thread-safe and keeps 10 connections.
WORKERS = 8


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
    relative: str   # <customer>/<name> (or <name>) below the inbox: the claim's name
    customer_id: str | None
    sha256: str
    claimed_at: datetime  # when it was first claimed (UTC): what the run took in since counts
    local: str      # the name it is taken in under locally (`local_names`)

    @property
    def name(self) -> str:
        """The upload's own name: the one its intake record keeps."""
        return self.relative.rpartition("/")[2]


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
                                "is", visible(self.inbox.url(item["Key"])), item["Size"])
                    continue
                if len(parts) == 2 and not is_local_name(parts[0]):
                    log.warning("%s is in a folder no customer id can be: left where it is; "
                                "move it into <inbox>/<customer_id>/",
                                visible(self.inbox.url(item["Key"])))
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

    def release(self, *relatives: str) -> None:
        """Remove the claim markers, up to a thousand per request; one by one those whose
        names XML cannot carry (control characters: DeleteObjects' body is XML)."""
        keys = []
        for relative in relatives:
            if visible(relative) == relative:
                keys.append({"Key": self.inbox.key + CLAIMS + relative})
            else:
                self.s3.delete_object(Bucket=self.inbox.bucket,
                                      Key=self.inbox.key + CLAIMS + relative)
        for start in range(0, len(keys), 1000):
            failed = self.s3.delete_objects(Bucket=self.inbox.bucket, Delete={
                "Objects": keys[start:start + 1000], "Quiet": True}).get("Errors", [])
            if failed:
                raise RunError(f"the claim {visible(self.inbox.url(failed[0]['Key']))} could "
                               f"not be removed ({failed[0].get('Code')}): the uploads are "
                               f"kept; check the permissions of the AWS_* credentials on the "
                               f"inbox, then run again")

    def download(self, key: str, etag: str, target: Path) -> str | None:
        """The upload streamed into `target`; its SHA-256, or None when it is no longer the
        one listed: replaced (the new one waits for the next run) or deleted since."""
        try:
            body = self.s3.get_object(Bucket=self.inbox.bucket, Key=key, IfMatch=etag)["Body"]
        except ClientError as error:
            if _precondition_failed(error):
                log.info("%s was replaced since it was listed: the new upload waits for the "
                         "next run", visible(self.inbox.url(key)))
                return None
            if _gone(error):
                log.info("%s was deleted since it was listed: nothing to take",
                         visible(self.inbox.url(key)))
                return None
            raise
        digest = hashlib.sha256()
        with target.open("wb") as handle:
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
        return digest.hexdigest()

    def keep(self, local: Path, prefix: Prefix, key: str) -> None:
        """Upload `local` to `prefix` + `key` (never over another file), verified: S3 answers
        the PUT with the MD5 of what it stored (the ETag of an unencrypted or SSE-S3 object),
        else the object is read back; RunError unless it is the local file."""
        target = prefix.key + key
        md5 = hashlib.md5(usedforsecurity=False)
        with local.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                md5.update(chunk)
        try:
            with local.open("rb") as handle:
                stored = self.s3.put_object(
                    Bucket=prefix.bucket, Key=target, Body=handle, IfNoneMatch="*",
                    ContentMD5=base64.b64encode(md5.digest()).decode())["ETag"]
            if stored.strip('"') == md5.hexdigest():
                return
        except ClientError as error:
            if not _precondition_failed(error):
                raise  # there already: kept by a run that stopped, if it reads back the same
        digest = hashlib.sha256()
        for chunk in self.s3.get_object(Bucket=prefix.bucket, Key=target)["Body"].iter_chunks(
                1 << 20):
            digest.update(chunk)
        if digest.hexdigest() != sha256_of(local):
            raise RunError(f"{prefix.url(target)} does not read back as {local.name} (another "
                           f"file of that name is kept there?); the upload stays in the inbox: "
                           f"move that object aside and run again")


def _marker(etag: str, claimed_at: datetime) -> bytes:
    return json.dumps({"etag": etag, "host": socket.gethostname(), "pid": os.getpid(),
                       "claimed_at": claimed_at.isoformat()}).encode()


def _precondition_failed(error) -> bool:
    return error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412")


def _gone(error) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


def local_names(name: str, key: str) -> tuple[str, ...]:
    """The names an upload may be taken in under locally, in order: its own when a file
    system takes it (at most NAME_BYTES of UTF-8, nothing `visible` escapes, NUL among them),
    then one of the project's own — the visible name cut short, a tag of the key, the
    extension — which no other upload has. The intake record keeps the upload's own name."""
    own = visible(name)
    tag = "~" + hashlib.sha256(key.encode()).hexdigest()[:12]
    suffix = Path(own).suffix if len(Path(own).suffix.encode()) <= 10 else ""
    room = NAME_BYTES - len(tag) - len(suffix.encode())
    stem = own[:len(own) - len(suffix)].encode()[:room].decode("utf-8", "ignore")
    ours = stem + tag + suffix
    return (name, ours) if is_local_name(name) else (ours,)


def is_local_name(name: str) -> bool:
    """Whether an upload's own name is taken in as it is (`local_names`)."""
    return visible(name) == name and len(name.encode()) <= NAME_BYTES


def fetch_uploads(workspace: Workspace, drop: DropFolder, customer_id: str | None
                  ) -> list[Fetched]:
    """Claim the waiting uploads and put each into the local inbox for take.py, under one of
    its `local_names`. One waiting or claimed locally already under such a name with its
    content (a run that stopped, or this job's attempt a commit conflict ended, left it) is
    not put there again, nor one the warehouse took in under its name since its claim."""
    items = drop.uploads(customer_id)
    with ThreadPoolExecutor(WORKERS) as pool:
        downloaded = list(pool.map(lambda item: _download(workspace, drop, item), items))
    fetched = [entry for entry in downloaded if entry is not None]
    taken = _taken(workspace, fetched)
    return [_place(workspace, entry, taken) for entry in fetched]


def _download(workspace: Workspace, drop: DropFolder, item: dict) -> Fetched | None:
    """Claim the upload and stream it beside where it is taken in (not yet visible there)."""
    relative = item["Key"][len(drop.inbox.key):]
    customer = relative.split("/")[0] if "/" in relative else None
    claimed_at = drop.claim(relative, item["ETag"])
    folder = workspace.inbox / (customer or "")
    folder.mkdir(parents=True, exist_ok=True)
    ours = local_names(relative.rpartition("/")[2], item["Key"])[-1]
    partial = folder / f".{ours}.download"
    digest = drop.download(item["Key"], item["ETag"], partial)
    if digest is None:
        drop.release(relative)
        return None
    modified = item["LastModified"].timestamp()
    os.utime(partial, (modified, modified))  # the month of a name without one
    return Fetched(item["Key"], item["ETag"], relative, customer, digest, claimed_at, ours)


def _place(workspace: Workspace, entry: Fetched, taken: dict) -> Fetched:
    """The downloaded upload made visible in the local inbox (unless taken or there already)
    under the first of its local names that is free there and among the claimed files."""
    folder = workspace.inbox / (entry.customer_id or "")
    partial = folder / f".{entry.local}.download"
    names = local_names(entry.name, entry.key)
    there = _local_copy(workspace, entry, names)
    if there is not None or _taken_as(taken, entry) is not None:
        partial.unlink()
        return replace(entry, local=there.name) if there is not None else entry
    claimed = workspace.inbox / CLAIMED / (entry.customer_id or NO_CUSTOMER)
    free = [n for n in names if not any(_occupied(f / n) for f in (folder, claimed))]
    local = free[0] if free else free_path(folder / names[-1]).name
    os.replace(partial, folder / local)
    return replace(entry, local=local)


def _occupied(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _local_copy(workspace: Workspace, entry: Fetched, names: tuple[str, ...] | None = None
                ) -> Path | None:
    """The upload's local copy: its content under one of its local names, waiting in the
    local inbox or claimed there. Another upload of the same content is not it."""
    folders = (workspace.inbox / (entry.customer_id or ""),
               workspace.inbox / CLAIMED / (entry.customer_id or NO_CUSTOMER))
    candidates = [folder / name for folder in folders for name in names or (entry.local,)]
    return next((p for p in candidates if p.is_file() and not p.is_symlink()
                 and sha256_of(p) == entry.sha256), None)


def taken_names(fetched: list[Fetched]) -> dict[tuple[str, str], str]:
    """(customer folder, local name) → the upload's own name, for take.py, of those taken in
    under another."""
    return {(entry.customer_id or NO_CUSTOMER, entry.local): entry.name for entry in fetched
            if entry.local != entry.name}


def settle_uploads(workspace: Workspace, drop: DropFolder, fetched: list[Fetched]) -> None:
    """Keep each taken upload's copy in the archive or quarantine prefix, verified, then
    remove the upload, and then the claims of those settled. One left waiting locally is given
    back to its claim."""
    taken = _taken(workspace, fetched)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(_settle, workspace, drop, entry, _taken_as(taken, entry)): entry
                   for entry in fetched}
    drop.release(*(entry.relative for future, entry in futures.items()
                   if future.exception() is None))
    for future in futures:
        future.result()  # the first failure, once the others are settled


def _settle(workspace: Workspace, drop: DropFolder, entry: Fetched, taken: str | None) -> None:
    if taken is None:  # left waiting: the upload stays, the local copy goes
        local = _local_copy(workspace, entry)
        if local is not None and CLAIMED not in local.parts:
            local.unlink()
        return
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
        if _precondition_failed(error):
            log.info("%s was replaced while it was taken in: the new upload waits for the "
                     "next run", visible(entry.relative))
        elif not _gone(error):
            raise
    log.info("%s kept as %s", visible(drop.inbox.url(entry.key)),
             visible(prefix.url(prefix.key + rest)))


# A worker's clock may run behind the one that claimed the upload first.
_CLOCK_MARGIN = timedelta(minutes=1)


def _since(claimed_at: datetime) -> datetime:
    return (claimed_at - _CLOCK_MARGIN).astimezone(UTC).replace(tzinfo=None)


def _taken(workspace: Workspace, fetched: list[Fetched]) -> dict[tuple, list[tuple]]:
    """The intake records since the earliest claim, read once: (customer, name, SHA-256) →
    [(received_at, stored_path)], oldest first."""
    if not fetched or not warehouse_exists(workspace):
        return {}
    found: dict[tuple, list[tuple]] = {}
    with open_warehouse(workspace, read_only=True) as con:
        for customer_id, name, sha256, received_at, stored_path in run_sql(
                con, "intake/drop_folder_taken.sql",
                since=min(_since(entry.claimed_at) for entry in fetched)).fetchall():
            found.setdefault((customer_id, name, sha256), []).append((received_at, stored_path))
    return found


def _taken_as(taken: dict[tuple, list[tuple]], entry: Fetched) -> str | None:
    """Where the warehouse says this upload went — taken in under its own name, with its
    content, for its customer, since it was claimed — relative to the workspace; None if it
    was not. Another upload of the same content is not this one."""
    since = _since(entry.claimed_at)
    return next((stored_path for received_at, stored_path in reversed(
        taken.get((entry.customer_id, entry.name, entry.sha256), [])) if received_at >= since),
        None)
