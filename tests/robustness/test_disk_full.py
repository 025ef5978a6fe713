"""A full disk: the run stops with exit 1 and a clear message, loses nothing, and once there is
space again the same command ends as an undisturbed run.

Mounting a small tmpfs needs privileges a test cannot count on, so the disk is made "full" for
the pipeline's process alone with RLIMIT_FSIZE: every write past the limit fails with EFBIG
("File too large"), as a write to a full disk fails with ENOSPC (SIGXFSZ is ignored so the
process sees the error instead of being killed). Both take the same path in the pipeline.
"""
import resource
import signal

import pytest
from harness import MONTH, assert_same, copy_workspace, fingerprint, polyrecon, polyrecon_here

RUN = ("run", "--month", MONTH)


def _limited(limit_bytes: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


CASES = [
    ("disk full while the inbox is taken in (warehouse cannot grow)", "inbox intake",
     None, RUN, 300_000, "is full"),
    ("disk full after intake, while reconciling", "reconcile",
     ("ingest", "--month", MONTH), RUN, 40_000, "is full"),
    ("disk full while rendering reports", "reports",
     ("ingest", "--month", MONTH), ("report", "--month", MONTH), 30_000, "File too large"),
]


@pytest.mark.parametrize(("label", "where", "before", "args", "limit", "says"), CASES,
                         ids=[c[1] for c in CASES])
def test_full_disk_stops_cleanly_and_the_rerun_ends_as_a_clean_run(
        demo_template, clean_run, tmp_path, reliability, label, where, before, args, limit,
        says):
    _, clean, _ = clean_run
    home = copy_workspace(demo_template, tmp_path / "ws")
    # Only the process whose disk is full runs as one of its own (its file-size limit); the
    # steps before and after it run in this process.
    if before:
        assert polyrecon_here(home, *before).returncode == 0
    full = polyrecon(home, *args, preexec_fn=_limited(limit))
    assert full.returncode == 1, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    assert says in full.stderr
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same(fingerprint(home), clean)
    reliability(label, where, "exit 1 with a message saying the disk is full; after space "
                              "returned, `run` ended as an undisturbed run")


@pytest.mark.parametrize("folder", ["reports", "outbox"])
def test_a_workspace_folder_that_cannot_be_written_is_one_line_and_the_rerun_ends_clean(
        demo_template, clean_run, tmp_path, reliability, folder):
    """Issue 29, 9: an unwritable reports/<month>/ or outbox/<month>/ ended in a traceback.
    Unwritable here is a file where the month's folder belongs (permissions do not stop the
    root user the tests may run as); both are refused by the system in the same way."""
    _, clean, _ = clean_run
    home = copy_workspace(demo_template, tmp_path / "ws")
    blocker = home / folder / MONTH
    blocker.parent.mkdir(exist_ok=True)
    blocker.write_text("in the way\n")
    failed = polyrecon(home, *RUN)
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr
    [line] = [x for x in failed.stderr.splitlines() if x.startswith("could not write ")]
    assert f"{folder}/{MONTH}" in line
    assert line.endswith("and run the same command again")
    blocker.unlink()
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same(fingerprint(home), clean)
    reliability(f"{folder}/<month>/ cannot be written (a file in the way, no permission)",
                folder, "exit 1 with one line naming the path; once it could be written, `run` "
                        "ended as an undisturbed run (queued e-mails went out once)")
