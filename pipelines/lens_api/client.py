"""The Poly Lens GraphQL API client: OAuth2 client credentials, the tenants a credential sees,
the tenant's device search page by page, retries with backoff, and the query-cost budget.

Queries go top-down through the tenant, as Lens's regional-availability page asks since Lens
runs EU-1 beside US-1: `tenants { … region { id } }` lists what a credential sees in every
region, and `tenant(id:) { region { id } inventory { deviceSearch } }` resolves a tenant's
devices in its own region, never partially across regions.

Lens is trusted for its data, not for its behaviour: whatever it answers, a pull ends, in a
bounded time, memory and disk, as a complete inventory or as one LensError naming what was
wrong (issue 18). The bounds:

- Time: each request has a deadline (`RetryPolicy.request_deadline`) from being sent to the
  last byte of its answer, and a pull has one (`pull_deadline`) for all its requests, retries
  and budget waits. The read timeout alone does not bound a request: it restarts with every
  byte, so an answer that drips would never end. A watchdog shuts the connection at the
  deadline. (Making the connection, TLS handshake included, is bounded by `connect_timeout`.)
- Memory: an answer is read as a stream and refused once it passes `answer_limit(page_size)`
  bytes: 8 KiB a device asked for (a device is about 0.5 KiB), at least 1 MiB.
- Disk: a page holds at most `pageSize` devices; a pull reads at most ceil(totalCount /
  pageSize) + PAGE_MARGIN pages and stops at a nextToken it was given before; a totalCount
  above MAX_DEVICES is refused.
- Output: Lens's own words in a message (its errors, a redirect's host) are cut to
  SHOWN_CHARACTERS, on one line, with the secret and the token blanked.
- Secrets: no redirect is followed, so the client secret goes only to `token_url` and the
  bearer token only to `graphql_url`; a redirect fails the pull and names the host it named.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from pipelines.lens_api.deadline import Watchdog

log = logging.getLogger("polyrecon")

# The scalar fields the search asks of a device node (site and room are objects).
DEVICE_FIELDS = ("id", "name", "serialNumber", "macAddress", "hardwareFamily",
                 "hardwareModel", "hardwareProduct", "productId", "softwareVersion",
                 "connected", "lastDetected")
PLACES = ("site", "room")
DEVICE_SEARCH = """
query PolyreconDeviceSearch($tenantId: ID!, $params: DeviceFindArgs) {
  calculateQueryCost { queryCost costUsed costRemaining secondsToReset }
  tenant(id: $tenantId) {
    id
    name
    region { id }
    inventory {
      deviceSearch(params: $params) {
        edges {
          node {
            DEVICE_FIELDS
            site { id name }
            room { id name }
          }
        }
        pageInfo { hasNextPage nextToken totalCount }
        error
      }
    }
  }
}
""".replace("DEVICE_FIELDS", " ".join(DEVICE_FIELDS))
# Every tenant the credential sees (a partner's credential: each customer account that accepted
# its request), in every region: the fields of Lens's own examples (docs "Platform Management":
# id, name, deviceCount; "Regional Availability": region { id }).
TENANTS = "query PolyreconTenants { tenants { id name deviceCount region { id } } }"
# A stable order for paging: a nextToken walks one order from page to page (AVI-SPL's adapter
# sends exactly this with every page).
DEVICE_SORT = {"fields": [{"name": "id", "direction": "ASC"}]}
# The budget is spent per rolling minute; wait for it rather than be refused, when what is left
# would not pay for another page with a margin (lensctl-ops-deck's rule).
COST_MARGIN = 1.2
LONGEST_BUDGET_WAIT = 65.0  # seconds: the budget window is 60 s
# How Lens words a spent budget in an HTTP 400 (polylens2otel reads these three).
_RATE_LIMIT_WORDS = ("rate limit", "rate-limit", "over limit")
_AUTH_MESSAGES = ("you must be logged in", "authorization failed", "unauthorized",
                  "unauthenticated", "token expired")

MIB = 1024 * 1024
# An answer's bound: a device node is about 0.5 KiB of JSON, so 8 KiB a device leaves room for
# fields Lens adds; 1 MiB at least, for the token and error answers (and small pages).
BYTES_PER_DEVICE = 8 * 1024
SMALLEST_ANSWER_LIMIT = MIB
# Pages past ceil(totalCount / pageSize): devices added while the pull pages, and a last page
# that comes back empty.
PAGE_MARGIN = 2
# A tenant's inventory, at most: far above the largest fleets (tens of thousands), and it
# bounds the raw file one pull may write (about 0.5 GB).
MAX_DEVICES = 1_000_000
# The tenants answer, at most: a tenant is about 150 bytes, so some 50,000 tenants.
TENANTS_ANSWER_LIMIT = 8 * MIB
# Lens's words in a message: a sentence's worth (a 50 MB error text is not a message).
SHOWN_CHARACTERS = 200
_CHUNK = 64 * 1024  # bytes read at a time from an answer


def answer_limit(page_size: int) -> int:
    """The most bytes read of an answer to a page of `page_size` devices (40 MB for 5000)."""
    return max(SMALLEST_ANSWER_LIMIT, page_size * BYTES_PER_DEVICE)


class LensError(Exception):
    """A pull that cannot complete; the message names what failed, never a secret."""


@dataclass(frozen=True)
class LensCredentials:
    client_id: str
    client_secret: str
    # Which credential: None, the partner's; else a customer's own (contracts.yaml
    # `lens_credential`), named in messages, never its id or secret.
    name: str | None = None

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return (f"LensCredentials(client_id={self.client_id!r}, client_secret='***', "
                f"name={self.name!r})")

    @classmethod
    def from_env(cls, name: str | None = None) -> LensCredentials | None:
        """The partner's credential (LENS_CLIENT_ID / LENS_CLIENT_SECRET), or with `name` a
        customer's own (LENS_<NAME>_CLIENT_ID / LENS_<NAME>_CLIENT_SECRET)."""
        client_id, secret = (os.environ.get(variable, "").strip()
                             for variable in env_names(name))
        return cls(client_id, secret, name) if client_id and secret else None

    @property
    def where(self) -> str:
        return credential_source(self.name)


# Resolves a credential by name (None: the partner's); None when it is not set. The command line
# reads the environment (LensCredentials.from_env); the DAGs look in Airflow's connections first.
CredentialLookup = Callable[[str | None], LensCredentials | None]


def env_names(name: str | None) -> tuple[str, str]:
    """The environment variables of a credential: LENS_CLIENT_ID / LENS_CLIENT_SECRET, or for a
    named one LENS_<NAME>_CLIENT_ID / LENS_<NAME>_CLIENT_SECRET (the name in capitals)."""
    prefix = "LENS_" if name is None else f"LENS_{name.upper()}_"
    return f"{prefix}CLIENT_ID", f"{prefix}CLIENT_SECRET"


def credential_source(name: str | None) -> str:
    """Where a credential comes from, in words: its variables, and its Airflow connection."""
    client_id, secret = env_names(name)
    return (f"{client_id} and {secret} (in Airflow: the connection "
            f"{'polylens_api' if name is None else name})")


def credential_label(name: str | None) -> str:
    return "the partner's credential" if name is None else f"the credential {name}"


@dataclass(frozen=True)
class LensTenant:
    """A tenant (a customer's Poly Lens account) as `tenants` lists it; None: Lens did not say."""
    id: str
    name: str | None
    region: str | None
    devices: int | None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    first_wait: float = 0.5  # seconds; doubled each attempt, with full jitter
    longest_wait: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # seconds between two bytes of an answer
    # Seconds from sending a request to the last byte of its answer: a page answers in seconds;
    # one that has not arrived in twice the read timeout is not coming (retried like a timeout).
    request_deadline: float = 120.0
    # Seconds for one tenant's pull, retries and budget waits included: 50,000 devices are 72
    # pages of 700, done in 80 minutes even waiting out the budget (65 s at most) before each.
    pull_deadline: float = 7200.0
    budget_pad: float = 2.0  # seconds waited past the query budget's reset, for clock skew


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class DevicePage:
    nodes: list[dict]
    total_count: int
    region: str | None = None  # the tenant's region, where Lens says it


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class LensClient:
    """OAuth2 client credentials, a cached token renewed before expiry (and once more on an
    authentication error), timeouts and deadlines, and retries with exponential backoff and
    jitter on connection errors, 5xx, 429 (honouring Retry-After) and 400 answers that say the
    rate limit is reached; and it waits for the query-cost budget when a page would overspend
    it. Every answer is checked for the shape it must have before anything in it is used."""

    def __init__(self, token_url: str, graphql_url: str, credentials: LensCredentials,
                 retry: RetryPolicy = DEFAULT_RETRY, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.token_url, self.graphql_url = token_url, graphql_url
        self._credentials, self._retry, self._sleep, self._clock = credentials, retry, sleep, clock
        self._watchdog = Watchdog()
        self._session = self._watchdog.session()
        self._token: str | None = None
        self._token_expires = 0.0
        self._pull_ends = math.inf  # set by each pull (device_pages)

    def close(self) -> None:
        self._session.close()

    def tenants(self) -> list[LensTenant]:
        """Every tenant the credential sees, in every region, once its shape is as asked."""
        self._pull_ends = self._clock() + self._retry.pull_deadline
        data = self.query(TENANTS, {}, TENANTS_ANSWER_LIMIT)
        listed = data.get("tenants")
        if not isinstance(listed, list):
            raise _unexpected(f"its tenants are {_kind(listed)}, not a list")
        return [_tenant(item) for item in listed]

    def device_pages(self, tenant_id: str, page_size: int) -> Iterator[DevicePage]:
        """Every page of the tenant's inventory; complete or an error, never silently short,
        and within the bounds of the module docstring."""
        self._pull_ends = self._clock() + self._retry.pull_deadline
        limit = answer_limit(page_size)
        seen: set[bytes] = set()  # digests of the nextTokens given (a token may be large)
        next_token, pages = None, 0
        while True:
            params = {"pageSize": page_size, "sort": DEVICE_SORT}
            if next_token:
                params["nextToken"] = next_token
            data = self.query(DEVICE_SEARCH, {"tenantId": tenant_id, "params": params}, limit)
            page, info = self._search_page(data, tenant_id, page_size)
            pages += 1
            yield page
            if not info["hasNextPage"]:
                return
            next_token = info.get("nextToken")
            if not next_token:
                raise LensError("Lens said there is a next page but gave no nextToken; "
                                "the inventory cannot be read completely")
            if not isinstance(next_token, str):
                raise _unexpected(f"its nextToken is {_kind(next_token)}, not a string")
            digest = hashlib.sha256(next_token.encode()).digest()
            if digest in seen:
                raise LensError("Lens gave a nextToken it had given before; paging would "
                                "never end")
            seen.add(digest)
            most = math.ceil(page.total_count / page_size) + PAGE_MARGIN
            if pages >= most:
                raise LensError(f"Lens kept paging: more than {most} pages for a totalCount "
                                f"of {page.total_count} at {page_size} devices a page")
            self._respect_budget(data.get("calculateQueryCost"))

    def _search_page(self, data: dict, tenant_id: str, page_size: int) -> tuple[DevicePage, dict]:
        """A page of the device search and its pageInfo, once its shape is as asked."""
        tenant = data.get("tenant")
        if tenant is None:
            raise LensError(f"Lens knows no tenant {tenant_id!r} (or these credentials "
                            f"cannot reach it)")
        search = _object(tenant, "its tenant")
        region = _region(search.get("region"))
        for key in ("inventory", "deviceSearch"):
            search = _object(search.get(key), f"its {key}")
        if search.get("error"):
            raise LensError(f"Lens could not search the inventory: "
                            f"{self._shown(_error_text(search['error']))}")
        edges = search.get("edges")
        if not isinstance(edges, list):
            raise _unexpected(f"its edges are {_kind(edges)}, not a list")
        if len(edges) > page_size:
            raise LensError(f"Lens sent {len(edges)} devices on a page of {page_size}")
        info = _object(search.get("pageInfo"), "its pageInfo")
        total = info.get("totalCount")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise _unexpected(f"its totalCount is {_kind(total)}, not a count of devices")
        if total > MAX_DEVICES:
            raise LensError(f"Lens reported a totalCount of {total}, more than the "
                            f"{MAX_DEVICES:,} devices a pull takes")
        if not isinstance(info.get("hasNextPage"), bool):
            raise _unexpected(f"its hasNextPage is {_kind(info.get('hasNextPage'))}, not "
                              f"true or false")
        return DevicePage([_device(edge) for edge in edges], total, region), info

    def _respect_budget(self, cost) -> None:
        """Wait for the query-cost budget to reset when it would not pay for the next page."""
        try:
            remaining, needed = float(cost["costRemaining"]), float(cost["queryCost"])
            reset = cost.get("secondsToReset")
            reset = 60.0 if reset is None else float(reset)
        except (KeyError, TypeError, ValueError, AttributeError):
            return  # no budget reported: Lens answers HTTP 400 "over limit" instead, retried
        if remaining < needed * COST_MARGIN:
            wait = min(max(reset, 0.0) + self._retry.budget_pad, LONGEST_BUDGET_WAIT)
            log.info("Lens API: query budget nearly spent (%g left, a page costs %g); waiting "
                     "%.0f s for it to reset", remaining, needed, wait)
            self._pause(wait)

    def query(self, query: str, variables: dict, limit: int = SMALLEST_ANSWER_LIMIT) -> dict:
        """The `data` of a GraphQL answer of at most `limit` bytes; its `errors` become one
        LensError."""
        renewed = False
        for attempt in range(1, self._retry.attempts + 1):
            try:
                body = self._post_graphql(query, variables, limit)
            except _AuthenticationFailed:
                if renewed:
                    raise LensError("Lens rejected a freshly issued token (check the API "
                                    "client's permissions)") from None
                self._token, renewed = None, True
                continue
            except _Retry as retry:
                if attempt == self._retry.attempts:
                    raise LensError(f"Lens API still failing after {attempt} attempts: "
                                    f"{retry.reason}") from None
                self._wait(attempt, retry)
                continue
            errors = body.get("errors")
            if errors:
                messages = "; ".join(_error_text(e) for e in (
                    errors if isinstance(errors, list) else [errors]))
                if any(m in messages.lower() for m in _AUTH_MESSAGES) and not renewed:
                    self._token, renewed = None, True
                    continue
                raise LensError(f"Lens answered with an error: {self._shown(messages)}")
            data = body.get("data")
            if data is None:
                return {}
            return _object(data, "its data")
        raise LensError("Lens API: no answer after renewing the token")

    def _wait(self, attempt: int, retry: _Retry) -> None:
        if retry.wait is not None:
            wait = min(retry.wait, self._retry.longest_wait)
        else:
            ceiling = min(self._retry.longest_wait, self._retry.first_wait * 2 ** (attempt - 1))
            wait = random.uniform(ceiling / 2, ceiling)
        log.info("Lens API: %s; retrying in %.1f s (attempt %d of %d)", retry.reason, wait,
                 attempt + 1, self._retry.attempts)
        self._pause(wait)

    def _pause(self, seconds: float) -> None:
        """Sleep, unless the pull's deadline comes first: then fail now, not after the wait."""
        if self._clock() + seconds > self._pull_ends:
            raise LensError(f"the pull would take longer than its deadline of "
                            f"{self._retry.pull_deadline:g} s")
        self._sleep(seconds)

    def _post_graphql(self, query: str, variables: dict, limit: int) -> dict:
        token = self._current_token()
        answer = self._post(self.graphql_url, {"query": query, "variables": variables},
                            "GraphQL", limit, headers={"Authorization": f"Bearer {token}"})
        if answer.status == 401 or answer.status == 403:
            raise _AuthenticationFailed()
        return _json_body(answer, "GraphQL")

    def _current_token(self) -> str:
        # Renew ahead of expiry: Lens tokens last a day and there is no refresh token.
        if self._token and self._clock() < self._token_expires:
            return self._token
        for attempt in range(1, self._retry.attempts + 1):
            try:
                answer = self._post(self.token_url, {
                    "client_id": self._credentials.client_id,
                    "client_secret": self._credentials.client_secret,
                    "grant_type": "client_credentials"}, "token", SMALLEST_ANSWER_LIMIT)
                if answer.status in (400, 401, 403) and not _is_rate_limit(answer):
                    raise LensError(f"Lens refused the API client credentials (HTTP "
                                    f"{answer.status}); check {self._credentials.where}")
                body = _json_body(answer, "token")
            except _Retry as retry:
                if attempt == self._retry.attempts:
                    raise LensError(f"Lens token endpoint still failing after {attempt} "
                                    f"attempts: {retry.reason}") from None
                self._wait(attempt, retry)
                continue
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise LensError("Lens token endpoint answered without an access_token")
            try:
                lifetime = float(body.get("expires_in", 3600))
            except (TypeError, ValueError):
                lifetime = math.nan
            if not 0 < lifetime < math.inf:
                raise LensError("Lens token endpoint answered with an expires_in that is not "
                                "a number of seconds")
            self._token = token
            self._token_expires = self._clock() + max(lifetime - max(60.0, lifetime / 10),
                                                       lifetime / 2)
            return token
        raise AssertionError("unreachable")

    def _post(self, url: str, payload: dict, what: str, limit: int,
              headers: dict | None = None) -> _Answer:
        """One request, its answer read whole (at most `limit` bytes) before its deadline."""
        pull_left = self._pull_ends - self._clock()
        if pull_left <= 0:
            raise self._past_deadline()
        seconds = min(self._retry.request_deadline, pull_left)
        try:
            with self._watchdog.armed(seconds), self._session.post(
                    url, json=payload, headers=headers, stream=True, allow_redirects=False,
                    timeout=(self._retry.connect_timeout, self._retry.read_timeout)
            ) as response:
                answer = _Answer(response.status_code, response.headers,
                                 _read(response, limit, what))
        except requests.RequestException as error:
            if self._watchdog.fired and seconds < self._retry.request_deadline:
                raise self._past_deadline() from None
            if self._watchdog.fired:
                raise _Retry(f"no complete answer within {seconds:g} s") from None
            if isinstance(error, requests.Timeout):
                raise _Retry("timed out") from None
            if isinstance(error, (requests.ConnectionError,
                                  requests.exceptions.ChunkedEncodingError,
                                  requests.exceptions.ContentDecodingError)):
                raise _Retry(f"connection lost ({type(error).__name__})") from None
            raise LensError(f"the Lens {what} request could not be made "
                            f"({type(error).__name__})") from None
        if 300 <= answer.status < 400:
            target = urlsplit(urljoin(url, answer.headers.get("Location") or "")).hostname
            raise LensError(f"the Lens {what} endpoint answered with a redirect (HTTP "
                            f"{answer.status} to {self._shown(target or 'nowhere')}); "
                            f"redirects are not followed, so credentials go to the "
                            f"configured host only: set lens.{what.lower()}_url to the final "
                            f"address")
        if answer.status == 429 or _is_rate_limit(answer):
            raise _Retry(f"rate limited (HTTP {answer.status})", _retry_after(answer))
        if answer.status >= 500:
            raise _Retry(f"HTTP {answer.status}")
        return answer

    def _past_deadline(self) -> LensError:
        return LensError(f"the pull took longer than its deadline of "
                         f"{self._retry.pull_deadline:g} s")

    def _shown(self, text: str) -> str:
        """Lens's words as a message may show them: one line, cut short, no secret in it."""
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        for secret in (self._credentials.client_secret, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS - 1] + "…"


class _AuthenticationFailed(Exception):
    pass


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _read(response: requests.Response, limit: int, what: str) -> bytes:
    """The answer's body, refused once it passes `limit` bytes (as sent or as decoded)."""
    declared = response.headers.get("Content-Length", "")
    data = bytearray()
    if not (declared.isdigit() and int(declared) > limit):
        for chunk in response.iter_content(_CHUNK):
            data += chunk
            if len(data) > limit:
                break
        else:
            return bytes(data)
    raise LensError(f"the Lens {what} answer is larger than {limit / MIB:.3g} MiB, more than "
                    f"it may take; it was not read")


def _device(edge) -> dict:
    """A device node, once each field the search asked for holds what it should."""
    node = _object(_object(edge, "a device edge").get("node"), "a device node")
    for key in DEVICE_FIELDS:
        if not isinstance(node.get(key), str | int | float | None):
            raise _unexpected(f"a device's {key} is {_kind(node.get(key))}")
    for key in PLACES:
        if node.get(key) is not None:
            place = _object(node[key], f"a device's {key}")
            if not all(isinstance(place.get(part), str | None) for part in ("id", "name")):
                raise _unexpected(f"a device's {key} has an id or name that is not a string")
    return node


def _tenant(item) -> LensTenant:
    """A tenant of the `tenants` list, once each field holds what it should."""
    tenant = _object(item, "a tenant")
    tenant_id, name, devices = tenant.get("id"), tenant.get("name"), tenant.get("deviceCount")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise _unexpected(f"a tenant's id is {_kind(tenant_id)}, not a string")
    if not isinstance(name, str | None):
        raise _unexpected(f"a tenant's name is {_kind(name)}, not a string")
    if devices is not None and (not isinstance(devices, int) or isinstance(devices, bool)
                                or devices < 0):
        raise _unexpected(f"a tenant's deviceCount is {_kind(devices)}, not a count of devices")
    return LensTenant(tenant_id, name, _region(tenant.get("region")), devices)


def _region(value) -> str | None:
    """A tenant's `region { id }`: its id, or None where Lens does not say (an answer recorded
    before Lens had regions has no region)."""
    if value is None:
        return None
    region_id = _object(value, "a tenant's region").get("id")
    if not isinstance(region_id, str | None):
        raise _unexpected(f"a tenant's region id is {_kind(region_id)}, not a string")
    return region_id or None


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise _unexpected(f"{what} is {_kind(value)}, not an object")
    return value


def _unexpected(detail: str) -> LensError:
    return LensError(f"unexpected answer from Lens: {detail}")


def _kind(value) -> str:
    """What a JSON value is, in words (never the value: it may be large, or a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a negative number" if value < 0 else "a number"
    return {str: "a string", list: "a list", dict: "an object"}[type(value)]


def _is_rate_limit(answer: _Answer) -> bool:
    if answer.status != 400:
        return False
    text = answer.text.lower()
    return any(words in text for words in _RATE_LIMIT_WORDS)


def _error_text(error) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def _retry_after(answer: _Answer) -> float | None:
    try:
        return max(0.0, float(answer.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _json_body(answer: _Answer, what: str) -> dict:
    try:
        body = json.loads(answer.data)
    except RecursionError:
        raise LensError(f"the Lens {what} answer is nested deeper than it can be read (a "
                        f"page is 8 levels deep)") from None
    except ValueError:
        if answer.status >= 400:
            raise LensError(f"Lens {what} request failed with HTTP {answer.status}") from None
        raise _Retry(f"the {what} answer was not complete JSON") from None
    if not isinstance(body, dict):
        raise LensError(f"unexpected {what} answer from Lens (HTTP {answer.status})")
    if answer.status >= 400 and not body.get("errors"):
        raise LensError(f"Lens {what} request failed with HTTP {answer.status}")
    return body
