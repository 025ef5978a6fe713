"""One polyrecon run per workspace at a time: a lock file, `<home>/.polyrecon.lock`.

The lock is an `fcntl.flock` on the file, so the operating system releases it when its holder
dies, however it dies (a SIGKILL included): a stale lock is never in the way. The file holds
the holder's PID, command and start time only to name them in the message of the run that has
to wait. The lock is re-entrant within a process (`run` takes it once for all its steps).

On DuckLake (warehouse/lake.py) the lock is a PostgreSQL advisory lock instead, which spans
machines and also dies with its holder; a job on one customer (`customer_id`) shares it with
jobs on other customers and excludes only that customer's and whole-workspace jobs.

While the lock is held the process creates files owner-only (umask 077): the workspace holds
CSM e-mail addresses in contracts.yaml, the warehouse and the outbox.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pipelines.core.config import lake_settings
from pipelines.core.errors import LockBusy, RunError
from pipelines.core.workspace import Workspace
from pipelines.warehouse import lake

LOCK_NAME = ".polyrecon.lock"
OWNER_ONLY = 0o077
_POLL_SECONDS = 0.2
_held: dict[str, int] = {}  # lock path -> depth, for this process
_scope: dict[str, str | None] = {}  # lock path -> the customer it is held for (None: all)
_guard = threading.Lock()


def lock_path(workspace: Workspace):
    return workspace.home / LOCK_NAME


def _holder(descriptor: int) -> str:
    try:
        os.lseek(descriptor, 0, os.SEEK_SET)
        holder = json.loads(os.read(descriptor, 4096) or b"{}")
        return (f"PID {holder['pid']}, `{holder['command']}`, started "
                f"{holder['started']} UTC")
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown"


@contextmanager
def workspace_lock(workspace: Workspace, command: str, wait: float = 0,
                   customer_id: str | None = None) -> Iterator[None]:
    """Hold the workspace's lock for `command`; wait up to `wait` seconds for another run to
    finish, then give up with one sentence naming it (RunError, exit code 1). `customer_id`
    narrows it to that customer where the warehouse allows writers side by side (DuckLake)."""
    settings = lake_settings(workspace)
    if settings is None:
        customer_id = None  # one writer per DuckDB file: the lock is always the whole workspace
    path = str(lock_path(workspace))
    with _guard:
        if path in _held:
            if _scope[path] not in (None, customer_id):
                wanted = customer_id or "the whole workspace"
                raise RunError(f"`{command}` needs the lock for {wanted} while this process "
                               f"holds it for {_scope[path]}; run it on its own")
            _held[path] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                _held[path] -= 1
        return
    old_umask = os.umask(OWNER_ONLY)
    try:
        holding = (lake.advisory_lock(settings, command, customer_id, wait) if settings
                   else _file_lock(workspace, path, command, wait))
        with holding:
            with _guard:
                _held[path], _scope[path] = 1, customer_id
            try:
                yield
            finally:
                with _guard:
                    del _held[path], _scope[path]
    finally:
        os.umask(old_umask)


@contextmanager
def _file_lock(workspace: Workspace, path: str, command: str, wait: float) -> Iterator[None]:
    """The flock on the lock file, labelled with its holder while it is held."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise RunError(f"cannot create the lock file {path}: {error.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"another polyrecon run ({_holder(descriptor)}) is working on "
                        f"{workspace.home}; wait for it to finish, or pass --wait SECONDS to "
                        f"wait for it") from None
                time.sleep(_POLL_SECONDS)
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, json.dumps({"pid": os.getpid(), "command": command,
                                              "started": started}).encode(), 0)
        except OSError:  # a full disk: the lock holds all the same, only its label is lost
            pass
        try:
            yield
        finally:
            # The holder's details go with it; the file stays (removing it would race a
            # process that opened it and is about to lock it).
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the flock
