"""The Poly Lens GraphQL API client: OAuth2 client credentials, the tenant's device search
page by page, retries with backoff, and the query-cost budget."""
from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests

log = logging.getLogger("polyrecon")

DEVICE_SEARCH = """
query PolyreconDeviceSearch($tenantId: ID!, $params: DeviceFindArgs) {
  calculateQueryCost { queryCost costUsed costRemaining secondsToReset }
  tenant(id: $tenantId) {
    inventory {
      deviceSearch(params: $params) {
        edges {
          node {
            id name serialNumber macAddress hardwareFamily hardwareModel hardwareProduct
            productId softwareVersion connected lastDetected
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
"""
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


class LensError(Exception):
    """A pull that cannot complete; the message names what failed, never a secret."""


@dataclass(frozen=True)
class LensCredentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return f"LensCredentials(client_id={self.client_id!r}, client_secret='***')"

    @classmethod
    def from_env(cls) -> LensCredentials | None:
        client_id = os.environ.get("LENS_CLIENT_ID", "").strip()
        secret = os.environ.get("LENS_CLIENT_SECRET", "").strip()
        return cls(client_id, secret) if client_id and secret else None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    first_wait: float = 0.5  # seconds; doubled each attempt, with full jitter
    longest_wait: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    budget_pad: float = 2.0  # seconds waited past the query budget's reset, for clock skew


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class DevicePage:
    nodes: list[dict]
    total_count: int


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class LensClient:
    """OAuth2 client credentials, a cached token renewed before expiry (and once more on an
    authentication error), timeouts, and retries with exponential backoff and jitter on
    connection errors, 5xx, 429 (honouring Retry-After) and 400 answers that say the rate limit
    is reached; and it waits for the query-cost budget when a page would overspend it."""

    def __init__(self, token_url: str, graphql_url: str, credentials: LensCredentials,
                 retry: RetryPolicy = DEFAULT_RETRY, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.token_url, self.graphql_url = token_url, graphql_url
        self._credentials, self._retry, self._sleep, self._clock = credentials, retry, sleep, clock
        self._session = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0

    def close(self) -> None:
        self._session.close()

    def device_pages(self, tenant_id: str, page_size: int) -> Iterator[DevicePage]:
        """Every page of the tenant's inventory; complete or an error, never silently short."""
        next_token = None
        while True:
            params = {"pageSize": page_size, "sort": DEVICE_SORT}
            if next_token:
                params["nextToken"] = next_token
            data = self.query(DEVICE_SEARCH, {"tenantId": tenant_id, "params": params})
            tenant = (data or {}).get("tenant")
            if tenant is None:
                raise LensError(f"Lens knows no tenant {tenant_id!r} (or these credentials "
                                f"cannot reach it)")
            try:
                search = tenant["inventory"]["deviceSearch"]
                if search.get("error"):
                    raise LensError(f"Lens could not search the inventory: "
                                    f"{_error_text(search['error'])}")
                info = search["pageInfo"]
                page = DevicePage([edge["node"] for edge in search["edges"]],
                                  int(info["totalCount"]))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise LensError(f"unexpected answer from Lens (no {error} in deviceSearch)"
                                ) from None
            yield page
            if not info["hasNextPage"]:
                return
            self._respect_budget(data.get("calculateQueryCost"))
            next_token = info.get("nextToken")
            if not next_token:
                raise LensError("Lens said there is a next page but gave no nextToken; "
                                "the inventory cannot be read completely")

    def _respect_budget(self, cost) -> None:
        """Wait for the query-cost budget to reset when it would not pay for the next page."""
        try:
            remaining, needed = float(cost["costRemaining"]), float(cost["queryCost"])
            reset = cost.get("secondsToReset")
            reset = 60.0 if reset is None else float(reset)
        except (KeyError, TypeError, ValueError):
            return  # no budget reported: Lens answers HTTP 400 "over limit" instead, retried
        if remaining < needed * COST_MARGIN:
            wait = min(max(reset, 0.0) + self._retry.budget_pad, LONGEST_BUDGET_WAIT)
            log.info("Lens API: query budget nearly spent (%g left, a page costs %g); waiting "
                     "%.0f s for it to reset", remaining, needed, wait)
            self._sleep(wait)

    def query(self, query: str, variables: dict) -> dict:
        """The `data` of a GraphQL answer; its `errors` become one LensError."""
        renewed = False
        for attempt in range(1, self._retry.attempts + 1):
            try:
                body = self._post_graphql(query, variables)
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
            errors = body.get("errors") or []
            if errors:
                messages = "; ".join(str(e.get("message", e)) for e in errors)
                if any(m in messages.lower() for m in _AUTH_MESSAGES) and not renewed:
                    self._token, renewed = None, True
                    continue
                raise LensError(f"Lens answered with an error: {messages}")
            return body.get("data") or {}
        raise LensError("Lens API: no answer after renewing the token")

    def _wait(self, attempt: int, retry: _Retry) -> None:
        if retry.wait is not None:
            wait = min(retry.wait, self._retry.longest_wait)
        else:
            ceiling = min(self._retry.longest_wait, self._retry.first_wait * 2 ** (attempt - 1))
            wait = random.uniform(ceiling / 2, ceiling)
        log.info("Lens API: %s; retrying in %.1f s (attempt %d of %d)", retry.reason, wait,
                 attempt + 1, self._retry.attempts)
        self._sleep(wait)

    def _post_graphql(self, query: str, variables: dict) -> dict:
        token = self._current_token()
        response = self._post(self.graphql_url, {"query": query, "variables": variables},
                              headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401 or response.status_code == 403:
            raise _AuthenticationFailed()
        return _json_body(response, "GraphQL")

    def _current_token(self) -> str:
        # Renew ahead of expiry: Lens tokens last a day and there is no refresh token.
        if self._token and self._clock() < self._token_expires:
            return self._token
        for attempt in range(1, self._retry.attempts + 1):
            try:
                response = self._post(self.token_url, {
                    "client_id": self._credentials.client_id,
                    "client_secret": self._credentials.client_secret,
                    "grant_type": "client_credentials"})
                if response.status_code in (400, 401, 403) and not _is_rate_limit(response):
                    raise LensError(f"Lens refused the API client credentials (HTTP "
                                    f"{response.status_code}); check LENS_CLIENT_ID and "
                                    f"LENS_CLIENT_SECRET")
                body = _json_body(response, "token")
                lifetime = float(body.get("expires_in", 3600))
                self._token = body["access_token"]
                self._token_expires = self._clock() + max(lifetime - max(60.0, lifetime / 10),
                                                           lifetime / 2)
                return self._token
            except _Retry as retry:
                if attempt == self._retry.attempts:
                    raise LensError(f"Lens token endpoint still failing after {attempt} "
                                    f"attempts: {retry.reason}") from None
                self._wait(attempt, retry)
            except KeyError:
                raise LensError("Lens token endpoint answered without an access_token") from None
        raise AssertionError("unreachable")

    def _post(self, url: str, payload: dict, headers: dict | None = None) -> requests.Response:
        try:
            response = self._session.post(
                url, json=payload, headers=headers,
                timeout=(self._retry.connect_timeout, self._retry.read_timeout))
        except requests.Timeout:
            raise _Retry("timed out") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as error:
            raise _Retry(f"connection lost ({type(error).__name__})") from None
        if response.status_code == 429 or _is_rate_limit(response):
            raise _Retry(f"rate limited (HTTP {response.status_code})",
                         _retry_after(response))
        if response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}")
        return response


class _AuthenticationFailed(Exception):
    pass


def _is_rate_limit(response: requests.Response) -> bool:
    if response.status_code != 400:
        return False
    text = response.text.lower()
    return any(words in text for words in _RATE_LIMIT_WORDS)


def _error_text(error) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _json_body(response: requests.Response, what: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        if response.status_code >= 400:
            raise LensError(f"Lens {what} request failed with HTTP {response.status_code}"
                            ) from None
        raise _Retry(f"the {what} answer was not complete JSON") from None
    if not isinstance(body, dict):
        raise LensError(f"unexpected {what} answer from Lens (HTTP {response.status_code})")
    if response.status_code >= 400 and not body.get("errors"):
        raise LensError(f"Lens {what} request failed with HTTP {response.status_code}")
    return body
