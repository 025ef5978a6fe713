"""The drop folder on a real S3 server: uploads taken exactly once — a run killed while it holds
claims, or one that could not keep its copies, is finished by the next — and a bad upload
quarantined there with its reason."""
from __future__ import annotations

import hashlib
import signal
import time

import pytest
import yaml
from harness import (
    MONTH,
    assert_same,
    copy_workspace,
    fingerprint,
    polyrecon,
    polyrecon_here,
    start,
)

RUN = ("run", "--month", MONTH)
INBOX, KEPT = "drop-inbox", "drop-kept"
BROKEN = "cobalt-ridge-engineering/notes-2026-04.csv"  # the demo's export that is no export


@pytest.fixture
def drop(s3, monkeypatch):
    client = s3.client()
    for bucket in (INBOX, KEPT):
        _empty(client, bucket)
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return client


def _empty(client, bucket: str) -> None:
    try:
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        pass


def uploaded_workspace(template, tmp_path, client, kept_bucket: bool = True):
    """The template with its uploads moved to the S3 inbox, oldest first, as a partner's
    upload tool would put them."""
    home = copy_workspace(template, tmp_path / "ws")
    client.create_bucket(Bucket=INBOX)
    if kept_bucket:
        client.create_bucket(Bucket=KEPT)
    files = sorted((p for p in (home / "inbox").rglob("*") if p.is_file()),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    for path in files:
        client.put_object(Bucket=INBOX, Key="inbox/" + path.relative_to(home / "inbox").as_posix(),
                          Body=path.read_bytes())
        path.unlink()
    return uploaded_workspace_config(home, client, buckets=False)


def uploaded_workspace_config(home, client, buckets: bool = True):
    """partner.yaml pointed at the S3 drop folder (its buckets made unless `buckets` is
    False)."""
    if buckets:
        for bucket in (INBOX, KEPT):
            client.create_bucket(Bucket=bucket)
    partner = home / "config" / "partner.yaml"
    settings = yaml.safe_load(partner.read_text(encoding="utf-8")) or {}
    settings["drop_folder"] = {"inbox": f"s3://{INBOX}/inbox/",
                               "archive": f"s3://{KEPT}/archive/",
                               "quarantine": f"s3://{KEPT}/quarantine/"}
    partner.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True),
                       encoding="utf-8")
    return home


def objects(client, bucket: str, prefix: str) -> dict[str, str]:
    """key below `prefix` -> SHA-256 of its content."""
    found = {}
    for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        found[item["Key"][len(prefix):]] = hashlib.sha256(body).hexdigest()
    return found


def assert_taken_exactly_once(home, client, embedded_run: tuple) -> None:
    assert_same(fingerprint(home), embedded_run[1])  # nothing twice: same ledger, same results
    assert objects(client, INBOX, "inbox/") == {}  # uploads and claims gone
    local_archive = {p.relative_to(home / "archive").as_posix():
                     hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in (home / "archive").rglob("*") if p.is_file()}
    assert objects(client, KEPT, "archive/") == local_archive
    assert not any("duplicates" in key for key in local_archive)


def test_uploads_on_s3_are_taken_as_from_the_local_inbox_and_a_bad_one_quarantined_there(
        template, embedded_run, drop, tmp_path):
    home = uploaded_workspace(template, tmp_path, drop)
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_taken_exactly_once(home, drop, embedded_run)
    quarantined = objects(drop, KEPT, "quarantine/")
    assert BROKEN in quarantined
    assert f"{BROKEN}.reason.txt" in quarantined
    reason = drop.get_object(Bucket=KEPT, Key=f"quarantine/{BROKEN}.reason.txt")["Body"].read()
    assert reason == (home / "quarantine" / f"{BROKEN}.reason.txt").read_bytes()

    again = polyrecon_here(home, *RUN)  # a re-run takes nothing again
    assert again.returncode == 0, again.stderr[-3000:]
    assert_taken_exactly_once(home, drop, embedded_run)


def test_control_characters_in_an_upload_name_are_shown_escaped(template, drop, tmp_path,
                                                                reliability):
    """Issue 29, 14: the "kept as" line showed an object name's escape sequences and U+202E
    raw, where every other line shows them escaped."""
    home = uploaded_workspace(template, tmp_path, drop)
    hostile = "cobalt-ridge-engineering/notes\x1b[31m\u202evsc.2026-10.csv"
    drop.put_object(Bucket=INBOX, Key=f"inbox/{hostile}", Body=b"just,notes\n")
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    kept = [line for line in done.stderr.splitlines() if " kept as " in line]
    assert kept
    assert not any("\x1b" in line or "\u202e" in line for line in kept)
    assert any("notes\\x1b[31m\\u202evsc.2026-10.csv kept as" in line for line in kept)
    reliability("ESC and U+202E in an S3 upload's name", "S3 drop folder",
                "shown as escapes (`\\x1b`, `\\u202e`) in the \"kept as\" line, as in every "
                "other line")


def _claimed_on_s3(home, client) -> bool:
    return any(key.startswith(".claims/") for key in _keys(client, INBOX, "inbox/"))


def _claimed_locally(home, client) -> bool:
    return any(p.is_file() for p in (home / "inbox" / ".claimed").rglob("*"))


@pytest.mark.parametrize("moment", [_claimed_on_s3, _claimed_locally],
                         ids=["claimed on S3", "claimed in the local inbox"])
def test_a_run_killed_while_it_holds_claims_is_finished_by_the_next(
        template, embedded_run, drop, tmp_path, moment):
    home = uploaded_workspace(template, tmp_path, drop)
    writer = start(home, *RUN)
    try:
        deadline = time.monotonic() + 120
        while not moment(home, drop):
            assert writer.poll() is None, "the run ended before that moment"
            assert time.monotonic() < deadline, "that moment never came"
            time.sleep(0.005)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert _claimed_on_s3(home, drop)  # killed between claim and archive
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_taken_exactly_once(home, drop, embedded_run)


def test_uploads_stay_in_the_inbox_until_their_copies_are_kept_then_the_next_run_settles_them(
        template, embedded_run, drop, tmp_path):
    home = uploaded_workspace(template, tmp_path, drop, kept_bucket=False)
    failed = polyrecon(home, *RUN)
    assert failed.returncode == 1
    assert "the drop folder" in failed.stderr
    assert "Traceback" not in failed.stderr
    waiting = _keys(drop, INBOX, "inbox/")
    assert {k for k in waiting if not k.startswith(".claims/")}  # no upload deleted
    assert list((home / "archive").rglob("*.csv"))  # though taken in locally
    drop.create_bucket(Bucket=KEPT)
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_taken_exactly_once(home, drop, embedded_run)


def _keys(client, bucket: str, prefix: str) -> list[str]:
    return [item["Key"][len(prefix):] for item in
            client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_the_drop_folder_must_be_an_s3_address(template, tmp_path):
    home = copy_workspace(template, tmp_path / "ws")
    partner = home / "config" / "partner.yaml"
    settings = yaml.safe_load(partner.read_text(encoding="utf-8")) or {}
    settings["drop_folder"] = {"inbox": "/srv/inbox", "archive": "s3://kept/archive/",
                               "quarantine": "s3://kept/quarantine/"}
    partner.write_text(yaml.safe_dump(settings), encoding="utf-8")
    done = polyrecon(home, *RUN)
    assert done.returncode == 2, done.stderr
    assert "drop_folder" in done.stderr
    assert "inbox" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_upload_dag_watches_the_s3_inbox_and_takes_what_lands_there(airflow_env, drop,
                                                                        s3, tmp_path):
    from builders import run_airflow

    from pipelines.demo.build import build_demo_workspace

    build_demo_workspace(tmp_path, "2026-10")
    for path in (tmp_path / "inbox").rglob("*.*"):  # the uploads go to S3 instead
        path.unlink()
    home = uploaded_workspace_config(tmp_path, drop)
    upload, broken = "lakeshore-health/upload-2026-10.csv", "lakeshore-health/broken-2026-10.csv"
    drop.put_object(Bucket=INBOX, Key=f"inbox/{upload}",
                    Body=b"serial_number,device_model\nU1,Poly Studio X30\nU2,Poly Studio X30\n")
    drop.put_object(Bucket=INBOX, Key=f"inbox/{broken}", Body=b"just some notes\n")
    env = {**airflow_env, **s3.env, "POLYRECON_HOME": str(home)}
    done = run_airflow(env, "dags", "test", "polylens_partner_upload")
    assert "state=success" in done.stdout + done.stderr, done.stderr[-3000:]
    assert _keys(drop, INBOX, "inbox/") == []
    assert "lakeshore-health/2026-10/upload-2026-10.csv" in objects(drop, KEPT, "archive/")
    assert f"{broken}.reason.txt" in objects(drop, KEPT, "quarantine/")
    rows = (home / "reports/2026-10/reconciliation.csv").read_text()
    assert "lakeshore-health,2026-10,video,OK,2," in rows


def _upload_of(client, customer: str) -> tuple[str, bytes]:
    """The customer's October inventory waiting in the S3 inbox: its name and content."""
    [name] = [key.partition("/")[2] for key in _keys(client, INBOX, "inbox/")
              if key.startswith(f"{customer}/") and MONTH in key
              and not key.partition("/")[2].lower().startswith(("rma", "notes"))]
    return name, client.get_object(Bucket=INBOX, Key=f"inbox/{customer}/{name}")["Body"].read()


def _ledger(home, customer: str) -> dict[str, tuple[str, str, str]]:
    """file name → (outcome, month, stored_path) of the customer's intake records."""
    return {name: (outcome, month, stored) for name, outcome, month, stored in _rows(
        home, "SELECT file_name, outcome, month, stored_path FROM intake_log "
              "WHERE customer_id = ? ORDER BY receipt_seq", [customer])}


def _rows(home, sql: str, params: list) -> list[tuple]:
    from builders import warehouse_rows

    from pipelines.core.workspace import Workspace

    return warehouse_rows(Workspace.resolve(home), sql, params)


INGEST = ("ingest", "--month", MONTH)
CUSTOMER = "lakeshore-health"


def test_the_same_bytes_under_other_names_are_each_taken_in_as_from_the_local_inbox(
        template, drop, tmp_path, reliability):
    """Issue 29, 1: an unchanged export named for the next month, and an identical re-upload
    under another name, were matched to the first upload by their content alone: deleted from
    S3, never taken in, no record anywhere."""
    from pipelines.core.months import renamed_for

    home = uploaded_workspace(template, tmp_path, drop)
    name, content = _upload_of(drop, CUSTOMER)
    november, again = renamed_for(name, "2026-11"), name.replace(".csv", "_again.csv")
    for extra in (november, again):
        drop.put_object(Bucket=INBOX, Key=f"inbox/{CUSTOMER}/{extra}", Body=content)
    done = polyrecon_here(home, *INGEST)
    assert done.returncode == 0, done.stderr[-3000:]
    ledger = _ledger(home, CUSTOMER)
    assert ledger[name] == ("loaded", MONTH, f"archive/{CUSTOMER}/{MONTH}/{name}")
    assert ledger[november] == ("loaded", "2026-11", f"archive/{CUSTOMER}/2026-11/{november}")
    assert ledger[again] == ("duplicate", MONTH, f"archive/{CUSTOMER}/duplicates/{again}")
    assert _keys(drop, INBOX, "inbox/") == []
    kept = objects(drop, KEPT, "archive/")
    for stored in (f"{MONTH}/{name}", f"2026-11/{november}", f"duplicates/{again}"):
        assert kept[f"{CUSTOMER}/{stored}"] == hashlib.sha256(content).hexdigest()
    reliability("the same bytes uploaded to S3 again: the next month's unchanged export, or a "
                "copy under another name", "S3 drop folder",
                "each taken in under its own name by the local inbox's rule (customer, month "
                "and content): the next month's loaded, the copy a recorded duplicate; each "
                "upload deleted only once its own kept copy is verified")


def test_upload_names_no_file_system_takes_are_taken_in_under_names_of_our_own(
        template, drop, tmp_path, reliability):
    """Issue 29, 2: an object name over 245 bytes, or one holding a NUL, ended every run in a
    traceback (`.<name>.download` is too long for the file system): no customer's upload went
    through."""
    home = uploaded_workspace(template, tmp_path, drop)
    uploads = len(_keys(drop, INBOX, "inbox/"))
    name, content = _upload_of(drop, CUSTOMER)
    long_name = "在庫" * 41 + f" {MONTH}.csv"  # 82 CJK characters: 246 bytes before the month
    nul_name = f"notes\x00{MONTH}.csv"
    drop.put_object(Bucket=INBOX, Key=f"inbox/{CUSTOMER}/{long_name}", Body=content)
    drop.put_object(Bucket=INBOX, Key=f"inbox/{CUSTOMER}/{nul_name}", Body=b"just,notes\n")
    done = polyrecon_here(home, *INGEST)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert _keys(drop, INBOX, "inbox/") == []  # every customer's uploads went through
    ledger = _ledger(home, CUSTOMER)
    assert ledger[name][0] == "loaded"
    outcome, month, stored = ledger[long_name]
    assert (outcome, month) == ("duplicate", MONTH)
    assert len(stored.rpartition("/")[2].encode()) <= 200
    outcome, _, stored = ledger[nul_name]
    assert outcome == "quarantined"
    assert "\x00" not in stored
    assert (home / stored).exists()
    assert f"notes\\x00{MONTH}.csv" in (home / f"{stored}.reason.txt").read_text()
    assert f"{stored.partition('/')[2]}.reason.txt" in objects(drop, KEPT, "quarantine/")
    assert any(f"notes\\x00{MONTH}.csv" in line for line in done.stderr.splitlines())
    assert "\x00" not in done.stderr
    assert _rows(home, "SELECT count(*) FROM intake_log", [])[0][0] == uploads + 2
    reliability("an S3 upload's name over 245 bytes (82 CJK characters), or holding a NUL",
                "S3 drop folder",
                "taken in under a bounded local name of our own (the name shown escaped, kept "
                "whole in the intake record); every other upload taken in as before")


def test_an_upload_deleted_between_listing_and_fetch_is_passed_over(
        template, drop, tmp_path, monkeypatch, capsys, reliability):
    """Issue 29, 12: an object deleted between the listing and its download (the partner took
    it back) failed the whole run, and its claim marker stayed for good."""
    from pipelines.cli import main
    from pipelines.intake import object_inbox

    home = uploaded_workspace(template, tmp_path, drop)
    uploads = len(_keys(drop, INBOX, "inbox/"))
    name, _ = _upload_of(drop, CUSTOMER)
    listed = object_inbox.DropFolder.uploads

    def deleted_once_listed(self, customer_id):
        found = listed(self, customer_id)
        drop.delete_object(Bucket=INBOX, Key=f"inbox/{CUSTOMER}/{name}")
        return found

    monkeypatch.setattr(object_inbox.DropFolder, "uploads", deleted_once_listed)
    assert main([*INGEST, "--home", str(home)]) == 0
    said = [line for line in capsys.readouterr().err.splitlines()
            if "was deleted since it was listed" in line]
    assert len(said) == 1
    assert name in said[0]
    assert _keys(drop, INBOX, "inbox/") == []  # its claim released, every other upload taken
    assert name not in _ledger(home, CUSTOMER)
    assert _rows(home, "SELECT count(*) FROM intake_log", [])[0][0] == uploads - 1
    reliability("an S3 upload deleted between the listing and its download", "S3 drop folder",
                "passed over with one line, its claim released; every other upload taken in")


def test_an_upload_stored_with_a_future_or_ancient_time_is_held_as_in_the_local_inbox(
        template, drop, tmp_path, reliability):
    """Issue 29, 13: a name without a month takes the month the upload was last changed; an
    S3 server whose clock is wrong stores a LastModified in the future or years back. The local
    inbox holds such a file (evidence.py), and so does the drop folder — but one with the bytes
    of another upload was matched to that one and deleted unseen (finding 1)."""
    from datetime import datetime

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    home = uploaded_workspace(template, tmp_path, drop)
    _, october = _upload_of(drop, CUSTOMER)
    uploads = {"inventory.csv": (october + b"\n", datetime(2031, 1, 15)),
               "inventory old.csv": (october + b"\n\n", datetime(2001, 1, 15)),
               "inventory copy.csv": (october, datetime(2031, 1, 15))}
    for undated, (content, stored_time) in uploads.items():
        drop.put_object(Bucket=INBOX, Key=f"inbox/{CUSTOMER}/{undated}", Body=content)
        # What a server with a wrong clock stores (moto runs in this process).
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(
            INBOX, f"inbox/{CUSTOMER}/{undated}").last_modified = stored_time
    done = polyrecon_here(home, *INGEST)
    assert done.returncode == 0, done.stderr[-3000:]
    ledger = _ledger(home, CUSTOMER)
    assert ledger["inventory.csv"][:2] == ("held", "2031-01")
    assert ledger["inventory old.csv"][:2] == ("held", "2001-01")
    assert ledger["inventory copy.csv"][:2] == ("held", "2031-01")
    assert _rows(home, "SELECT count(*) FROM snapshots WHERE month IN ('2031-01', '2001-01')",
                 [])[0][0] == 0
    assert _keys(drop, INBOX, "inbox/") == []
    kept = objects(drop, KEPT, "quarantine/")
    assert {f"{CUSTOMER}/{n}{end}" for n in uploads for end in ("", ".reason.txt")} <= set(kept)
    reliability("an S3 upload without a month in its name, stored with a time in the future or "
                "before every term (a server's wrong clock)", "S3 drop folder",
                "held in quarantine with its reason, as from the local inbox, also when its "
                "bytes are another upload's; nothing of it loaded")
