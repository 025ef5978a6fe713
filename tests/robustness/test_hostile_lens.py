"""A hostile Lens (issue 18), over real loopback HTTP, through the CLI: every bad answer
becomes a failed pull recorded for its customer, named in one short sentence with no secret in
it; the other customers are pulled; archive/ keeps complete pulls only; every wait and every
read is bounded, and credentials go nowhere but the configured hosts."""
import itertools
import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from builders import cli, contract, make_workspace, write_yaml
from fake_lens import FakeLens, Faults, fake_device

from pipelines.core.config import load_config
from pipelines.core.months import Month
from pipelines.lens_api.client import LensCredentials, RetryPolicy
from pipelines.lens_api.pull import pull_lens

MONTH = Month.of(date.today())  # the pull window is open for the current month
PAGE_SIZE = 100
HEALTHY_DEVICES = 150  # t-bolt's inventory: two pages
LONGEST_MESSAGE = 400  # characters: what a one-sentence failure may take, Lens's words cut


# --- a hostile tenant: answers written byte for byte --------------------------------------

def _raw(handler, chunks) -> int:
    """Write `chunks` as the whole answer (status line included) until the client hangs up;
    the bytes written."""
    sent = 0
    try:
        for chunk in chunks:
            handler.wfile.write(chunk)
            handler.wfile.flush()
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client stopped reading: what a bounded client does
    handler.close_connection = True
    return sent


def _http(status: int, body: bytes, headers: dict | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} Hostile", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _page(edges: list, has_next: bool = False, token: str | None = None,
          total: int | None = None) -> dict:
    return {"data": {"tenant": {"inventory": {"deviceSearch": {
        "edges": edges, "error": None,
        "pageInfo": {"hasNextPage": has_next, "nextToken": token,
                     "totalCount": len(edges) if total is None else total}}}}}}


def _nodes(count: int) -> list:
    return [{"node": fake_device("t-acme", i)} for i in range(count)]


def _answer(body, status: int = 200, headers: dict | None = None):
    """A hostile handler giving the same answer to every request."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda handler, variables: _raw(handler, [_http(status, data, headers)])


def _pages(make_page):
    """A hostile handler answering request n (from 1) with `make_page(n)`; after 60 requests
    it ends the inventory, so a client without bounds finishes (and fails the test) instead
    of paging for ever."""
    numbers = itertools.count(1)

    def answer(handler, variables):
        number = next(numbers)
        page = make_page(number) if number <= 60 else _page([], total=0)
        _raw(handler, [_http(200, json.dumps(page).encode())])
    return answer


# --- one run of the real CLI with a hostile tenant and a healthy one ------------------------

def _workspace(tmp_path, fake: FakeLens):
    workspace = make_workspace(tmp_path, [contract(c, lens_tenant_id=f"t-{c}")
                                          for c in ("acme", "bolt")])  # acme pulled first
    write_yaml(workspace.partner_file, {"lens": {"token_url": fake.token_url,
                                                 "graphql_url": fake.graphql_url,
                                                 "page_size": PAGE_SIZE}})
    return workspace


def _pulls(workspace) -> dict[str, tuple[str, str | None, float]]:
    """customer -> the outcome of its pull, its error and how long it took (seconds)."""
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    try:
        return {customer: row for customer, *row in con.execute(
            "SELECT customer_id, outcome, error, epoch(finished_at - started_at) "
            "FROM lens_pulls").fetchall()}
    finally:
        con.close()


@pytest.fixture
def ingest(monkeypatch, capsys):
    """`ingest(tmp_path, fake)`: `python -m pipelines ingest` through the CLI's `main`, in this
    process (each test would otherwise pay the imports of a new one): the exit code, all it
    printed (its output and its log), the workspace."""
    def run(tmp_path, fake: FakeLens):
        workspace = _workspace(tmp_path, fake)
        monkeypatch.setenv("LENS_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("LENS_CLIENT_SECRET", fake.client_secret)
        capsys.readouterr()
        code = cli(workspace, "ingest", "--month", str(MONTH))
        printed = capsys.readouterr()
        return code, printed.out + printed.err, workspace
    return run


def _assert_failed_alone(workspace, fake: FakeLens, printed: str, words: str,
                         others_pulled: bool = True) -> None:
    """acme's pull failed, recorded with `words` in one short sentence; bolt's was loaded
    (unless the fault is Lens's for everyone); no partial file, no secret anywhere."""
    pulls = _pulls(workspace)
    outcome, error, _ = pulls["acme"]
    assert outcome == "failed", error
    assert words in error, error
    assert "\n" not in error, error[:1000]
    assert len(error) <= LONGEST_MESSAGE, error[:1000]
    assert f"Lens API acme (tenant t-acme): pull failed, nothing stored: {error}" in printed
    assert pulls["bolt"][0] == ("loaded" if others_pulled else "failed"), pulls["bolt"]
    assert "Traceback" not in printed, printed[-2000:]
    assert len(printed) < 5_000, printed[-2000:]
    assert not list(workspace.archive.rglob("*.partial"))
    written = [p.read_bytes() for p in workspace.home.rglob("*") if p.is_file()]
    for secret in (fake.client_secret, *fake.issued_tokens):
        assert secret not in printed
        assert not any(secret.encode() in data for data in written)


# --- 6. hostile answers ---------------------------------------------------------------------

NESTED = b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
HOSTILE_ANSWERS = {
    "a null node": (_answer(_page([{"node": None}])), "a device node is null"),
    "a string node": (_answer(_page([{"node": "Poly Studio X30"}])),
                      "a device node is a string"),
    "a string site": (_answer(_page([{"node": {**fake_device("t-acme", 1), "site": "Berlin"}}])),
                      "a device's site is a string"),
    "data as a list": (_answer({"data": []}), "its data is a list"),
    "errors as a string": (_answer({"errors": "Internal failure"}),
                           "Lens answered with an error: Internal failure"),
    "JSON nested 200,000 deep": (_answer(NESTED), "nested deeper than"),
    "a redirect to ftp://": (_answer(b"", 302, {"Location": "ftp://files.example/inventory"}),
                             "redirect (HTTP 302 to files.example)"),
    "a redirect loop": (_answer(b"", 307, {"Location": "/graphql"}), "redirect (HTTP 307"),
    "more devices on a page than asked for": (_answer(_page(_nodes(PAGE_SIZE + 1))),
                                              "101 devices on a page of 100"),
}


@pytest.mark.parametrize("case", list(HOSTILE_ANSWERS))
def test_a_hostile_answer_fails_only_its_customers_pull(tmp_path, reliability, ingest, case):
    handler, words = HOSTILE_ANSWERS[case]
    with FakeLens({"t-bolt": HEALTHY_DEVICES}, hostile={"t-acme": handler}) as fake:
        code, printed, workspace = ingest(tmp_path, fake)
    assert code == 1
    _assert_failed_alone(workspace, fake, printed, words)
    reliability(f"Lens answers {case}", "Lens pull",
                f"that customer's pull recorded as failed (\"{words}\"), no partial file; the "
                f"other customer pulled")


def test_a_token_answer_with_expires_in_soon_fails_one_pull(tmp_path, reliability, ingest):
    with FakeLens({"t-acme": 10, "t-bolt": HEALTHY_DEVICES},
                  faults=Faults(expires_soon=1)) as fake:
        code, printed, workspace = ingest(tmp_path, fake)
    assert code == 1
    _assert_failed_alone(workspace, fake, printed, "expires_in that is not a number of seconds")
    reliability("Lens token endpoint answers `expires_in: \"soon\"`", "Lens pull",
                "the pull that asked recorded as failed; the next token was good and the other "
                "customer pulled")


# --- 3. paging that never ends ----------------------------------------------------------------

ENDLESS = {
    "a nextToken seen before": (
        lambda n: _page(_nodes(PAGE_SIZE), True, "the-same-token", 1_000),
        "Lens gave a nextToken it had given before", 2),
    "empty pages with fresh tokens": (
        lambda n: _page([], True, f"token-{n}", 250), "more than 5 pages", 5),
    "full pages past totalCount": (
        lambda n: _page(_nodes(PAGE_SIZE), True, f"token-{n}", 250), "more than 5 pages", 5),
}


@pytest.mark.parametrize("case", list(ENDLESS))
def test_paging_that_never_ends_is_stopped(tmp_path, reliability, ingest, case):
    make_page, words, requests = ENDLESS[case]
    with FakeLens({"t-bolt": HEALTHY_DEVICES}, hostile={"t-acme": _pages(make_page)}) as fake:
        code, printed, workspace = ingest(tmp_path, fake)
        # bolt's two pages and acme's: no page past a token seen before or past the bound
        assert fake.graphql_requests == requests + 2
    assert code == 1
    _assert_failed_alone(workspace, fake, printed, words)
    reliability(f"Lens paging: {case}", "Lens pull",
                f"stopped after {requests} pages (a token seen before, or "
                f"ceil(totalCount / pageSize) + 2 pages), recorded as failed; the other "
                f"customer pulled")


# --- 10. answers of any size ------------------------------------------------------------------

def _streamed_page(megabytes: int, sent: list):
    """A page of `megabytes` MB with no Content-Length (it ends when the connection closes),
    written in pieces; the bytes written go to `sent`."""
    node = json.dumps({"node": fake_device("t-acme", 1)}).encode()
    count = megabytes * 1_000_000 // (len(node) + 1)
    before, after = json.dumps(_page(["EDGES"], total=count)).encode().split(b'"EDGES"')

    def chunks():
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        yield before
        for start in range(0, count, 1_000):
            yield (b"," if start else b"") + b",".join([node] * min(1_000, count - start))
        yield after

    return lambda handler, variables: sent.append(_raw(handler, chunks()))


def _error_of(characters: int, sent: list):
    data = json.dumps({"errors": [{"message": "E" * characters}]}).encode()
    return lambda handler, variables: sent.append(_raw(handler, [_http(400, data)]))


REFUSED = "refused past its bound (1 MiB for pages of 100: 8 KiB a device, 1 MiB at least)"
LARGE = {
    "a 60 MB page without a Content-Length": (
        lambda sent: _streamed_page(60, sent), "larger than 1 MiB", REFUSED + " as it streamed"),
    "a 50 MB error message": (lambda sent: _error_of(50_000_000, sent), "larger than 1 MiB",
                              REFUSED + " by its Content-Length, unread"),
    "a 200 kB error message": (lambda sent: _error_of(200_000, sent),
                               "Lens answered with an error: EEEE",
                               ("read; its text cut to 200 characters in what is printed "
                                "and stored")),
}


@pytest.mark.parametrize("case", list(LARGE))
def test_an_answer_is_read_up_to_a_bound_and_its_error_text_is_cut(tmp_path, reliability,
                                                                    ingest, case):
    make_handler, words, happened = LARGE[case]
    sent: list[int] = []
    with FakeLens({"t-bolt": HEALTHY_DEVICES}, hostile={"t-acme": make_handler(sent)}) as fake:
        code, printed, workspace = ingest(tmp_path, fake)
    assert code == 1
    _assert_failed_alone(workspace, fake, printed, words)
    # The client stopped reading at its bound: the rest stayed with the server (what the
    # loopback's socket buffers took aside).
    assert sum(sent) < 16_000_000, sent
    reliability(f"Lens answers {case}", "Lens pull",
                f"{happened}; that customer's pull recorded as failed, the other customer "
                f"pulled")


# --- 4. an answer that drips ------------------------------------------------------------------

DRIPS = {
    "the body": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100"
                b"\r\n\r\n{",
    "the headers": b"HTTP/1.1 200 OK\r\nX-Drip: ",
}


@pytest.mark.parametrize("part", list(DRIPS))
def test_an_answer_that_drips_is_cut_off_at_the_deadline(tmp_path, reliability, part):
    # One byte a second, 120 of them at most: a client without a deadline waits them out.
    def drip(handler, variables):
        return (_raw(handler, itertools.chain(
            [DRIPS[part]], (time.sleep(1) or b"a" for _ in range(120)))))
    retry = RetryPolicy(first_wait=0.01, longest_wait=0.05, connect_timeout=2, read_timeout=5,
                        request_deadline=1.5, pull_deadline=4)
    with FakeLens({"t-bolt": HEALTHY_DEVICES}, hostile={"t-acme": drip}) as fake:
        workspace = _workspace(tmp_path, fake)
        acme, bolt = pull_lens(load_config(workspace), MONTH, today=date.today(), retry=retry,
                               credentials=LensCredentials(fake.client_id, fake.client_secret))
        graphql_requests = fake.graphql_requests
    assert acme.outcome == "failed"
    assert "longer than its deadline of 4 s" in acme.detail
    assert bolt.outcome == "loaded", bolt.detail
    assert graphql_requests >= 2 + 2  # each request cut at 1.5 s and retried, then the pull
    _, error, seconds = _pulls(workspace)["acme"]
    assert acme.detail == f"pull failed, nothing stored: {error}"
    # Cut at the deadline, not after the drip: it took the deadline and ended well within the
    # drip's two minutes (a generous cap: a busy machine adds seconds, never a minute).
    assert 3 < seconds < 60, seconds
    assert not list(workspace.archive.rglob("*.partial"))
    reliability(f"Lens drips {part} of an answer, one byte a second", "Lens pull",
                "each request cut at its deadline and retried, the pull at its own; recorded "
                "as failed; the other customer pulled")


# --- 5. redirects and credentials -------------------------------------------------------------

class _Thief:
    """A host that is not Lens: it records every request that reaches it."""

    def __init__(self):
        self.requests: list[tuple[str, str, bytes]] = []
        thief = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                thief.requests.append((self.path, str(self.headers), body))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize("endpoint", ["token", "GraphQL"])
def test_a_redirect_never_takes_credentials_to_another_host(tmp_path, reliability, ingest,
                                                           endpoint):
    with _Thief() as thief:
        if endpoint == "token":
            lens = FakeLens({"t-acme": 10, "t-bolt": HEALTHY_DEVICES},
                            faults=Faults(token_redirect=f"{thief.url}/oauth/token"))
        else:
            lens = FakeLens({"t-bolt": HEALTHY_DEVICES}, hostile={"t-acme": _answer(
                b"", 308, {"Location": f"{thief.url}/graphql"})})
        with lens as fake:
            code, printed, workspace = ingest(tmp_path, fake)
        assert thief.requests == []
    assert code == 1
    # A token endpoint that redirects fails every pull: all of them need its token.
    _assert_failed_alone(workspace, fake, printed, f"Lens {endpoint} endpoint answered with a "
                         f"redirect (HTTP 30{7 if endpoint == 'token' else 8} to 127.0.0.1)",
                         others_pulled=endpoint == "GraphQL")
    reliability(f"the Lens {endpoint} endpoint redirects to another host", "Lens pull",
                "not followed: the other host got nothing (no client secret, no token); "
                + ("every pull recorded as failed" if endpoint == "token"
                   else "that customer's pull recorded as failed, the other customer pulled"))
