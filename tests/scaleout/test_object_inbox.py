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
    done = polyrecon(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_taken_exactly_once(home, drop, embedded_run)
    quarantined = objects(drop, KEPT, "quarantine/")
    assert BROKEN in quarantined
    assert f"{BROKEN}.reason.txt" in quarantined
    reason = drop.get_object(Bucket=KEPT, Key=f"quarantine/{BROKEN}.reason.txt")["Body"].read()
    assert reason == (home / "quarantine" / f"{BROKEN}.reason.txt").read_bytes()

    again = polyrecon(home, *RUN)  # a re-run takes nothing again
    assert again.returncode == 0, again.stderr[-3000:]
    assert_taken_exactly_once(home, drop, embedded_run)


def test_control_characters_in_an_upload_name_are_shown_escaped(template, drop, tmp_path,
                                                                reliability):
    """Issue 29, 14: the "kept as" line showed an object name's escape sequences and U+202E
    raw, where every other line shows them escaped."""
    home = uploaded_workspace(template, tmp_path, drop)
    hostile = "cobalt-ridge-engineering/notes\x1b[31m\u202evsc.2026-10.csv"
    drop.put_object(Bucket=INBOX, Key=f"inbox/{hostile}", Body=b"just,notes\n")
    done = polyrecon(home, *RUN)
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
    done = polyrecon(home, *RUN)
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
    done = polyrecon(home, *RUN)
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
