"""scripts/lens_schema_check.py (issue 31): a field Lens renamed is named before a run meets it,
from Lens's answers as a public client recorded them (fixtures/lens/README.md), and from a live
Lens on loopback, asked without credentials.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fake_lens import FakeLens

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "lens_schema_check.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lens"
RECORDED_PAGE = FIXTURES / "polylens2otel-devicesearch.json"
RECORDED_QUERY = FIXTURES / "polylens2otel-devicesearch.graphql"
RECORDED_REFUSAL = FIXTURES / "polylens2otel-error-validation.json"
INSTRUCTION = ("rename it in pipelines/lens_api/client.py (and where pipelines/ingest_lens.py "
               "reads it), then run this check again.")


def check(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def findings(result: subprocess.CompletedProcess) -> list[str]:
    """The drift sentences; a query Lens let through (it asked for a login) is a status line."""
    return [line for line in result.stdout.splitlines()
            if line.startswith("Lens ") and not line.startswith("Lens checked")]


def test_the_recorded_page_shows_every_field_it_was_asked_for():
    result = check("--replay", RECORDED_PAGE, "--asked", RECORDED_QUERY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert findings(result) == []
    assert "No drift" in result.stdout
    # The recording's query never asked for the serial: said so, not taken for drift.
    [unshown] = [line for line in result.stdout.splitlines() if "not shown" in line]
    assert "node.serialNumber" in unshown
    assert "node.hardwareModel" not in unshown


def test_a_field_renamed_in_the_recorded_page_is_named(tmp_path):
    renamed = tmp_path / "renamed.json"
    renamed.write_text(RECORDED_PAGE.read_text(encoding="utf-8")
                       .replace('"hardwareModel"', '"modelName"'), encoding="utf-8")
    result = check("--replay", renamed, "--asked", RECORDED_QUERY)
    assert result.returncode == 1
    [sentence] = findings(result)
    assert re.fullmatch(
        r'Lens answered without the field "hardwareModel" at '
        r'tenant\.inventory\.deviceSearch\.edges\.node \(it answered "modelName" there\), and '
        r"the pull asks for it in \w+: if Lens renamed it, " + re.escape(INSTRUCTION),
        sentence), sentence


def test_lens_refusing_a_field_the_pull_asks_for_is_named(tmp_path):
    # Lens's recorded refusal, as it would read had Lens renamed lastDetected to lastSeen.
    refusal = tmp_path / "refusal.json"
    refusal.write_text(RECORDED_REFUSAL.read_text(encoding="utf-8")
                       .replace('mean \\"lastDetected\\"', 'mean \\"lastSeen\\"')
                       .replace("lastDetcted", "lastDetected"), encoding="utf-8")
    result = check("--replay", refusal)
    assert result.returncode == 1
    [sentence] = findings(result)
    assert re.fullmatch(r'Lens has no field "lastDetected" on Device any more \(it suggests '
                        r'"lastSeen"\), and the pull asks for it in \w+: ' + re.escape(INSTRUCTION),
                        sentence), sentence


def test_the_recorded_refusal_of_another_clients_query_is_no_drift():
    """Lens refused polylens2otel's typo "lastDetcted": that answer says nothing of our query."""
    result = check("--replay", RECORDED_REFUSAL)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"{RECORDED_REFUSAL}: Lens refused the field \"lastDetcted\", which the pull does not ask "
        f"for: the answer is to another query; record Lens's answer to the pull's own queries "
        f"(--live).")


def test_a_live_lens_that_asks_for_a_login_has_every_field():
    with FakeLens({"t-acme": 1}) as fake:
        result = check("--live", "--url", fake.graphql_url)
        assert fake.graphql_requests >= 1
        assert fake.issued_tokens == []  # no credentials used
    assert result.returncode == 0, result.stdout + result.stderr
    assert "asked for a login" in result.stdout


class _RefusingLens(BaseHTTPRequestHandler):
    """Answers as Lens does to a query without a login: the device search, naming a field Lens
    no longer has, refused (HTTP 400); any other query asked for a login (HTTP 401)."""

    refusal = b""
    seen: list[tuple[dict, str | None]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((body, self.headers.get("Authorization")))
        if "deviceSearch" in body["query"]:
            status, answer = 400, self.refusal
        else:
            status, answer = 401, json.dumps({"errors": [{
                "message": "You must be logged in to run this query"}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_a_live_lens_refusing_a_renamed_field_fails_naming_it():
    _RefusingLens.refusal = RECORDED_REFUSAL.read_bytes().replace(b"lastDetcted", b"connected")
    _RefusingLens.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingLens)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = check("--live", "--url", f"http://127.0.0.1:{server.server_port}/graphql")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    [sentence] = findings(result)
    assert sentence.startswith('Lens has no field "connected" on Device any more')
    assert sentence.endswith(INSTRUCTION)
    assert [authorization for _, authorization in _RefusingLens.seen] == [None] * len(
        _RefusingLens.seen)  # no credentials sent
