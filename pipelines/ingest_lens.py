"""Reading what Poly Lens gives us: the Lens GraphQL API, device exports (CSV), and RMA logs.

A Lens export arrives in whatever shape the partner's tool produced: comma, semicolon or tab
separated; UTF-8 with or without BOM, UTF-16 or Windows-1252; headers in Lens UI, API or
snake_case style. Headers are matched case- and punctuation-insensitively against aliases.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import requests

log = logging.getLogger("polyrecon")

INVENTORY_ALIASES: dict[str, tuple[str, ...]] = {
    # field: header aliases, normalised (lower case, letters and digits only), best first
    "serial": ("serialnumber", "serial", "serialno"),
    "mac": ("macaddress", "mac"),
    "model": ("devicemodel", "model", "hardwaremodel", "product", "hardwareproduct"),
    "site": ("sitename", "site"),
    "room": ("roomname", "room"),
    "lens_device_id": ("lensdeviceid", "deviceid", "id"),
    "device_name": ("devicename", "name"),
}
RMA_ALIASES: dict[str, tuple[str, ...]] = {
    "rma_number": ("rmanumber", "rmano", "rmanr", "rma", "rmaid"),
    "rma_date": ("date", "rmadate", "createddate", "created"),
    "serial": INVENTORY_ALIASES["serial"],
    "model": INVENTORY_ALIASES["model"],
}
SEPARATORS = (",", ";", "\t")
# The raw layer's inventory columns, as stored per snapshot (see sql/insert_raw_inventory.sql).
RAW_COLUMNS = ("row_number", *INVENTORY_ALIASES, "extra_json")
MAX_FIELD_CHARS = 100_000


class UnreadableExport(Exception):
    """The file as a whole cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class ParsedExport:
    rows: pd.DataFrame  # row_number + one column per field + extra_json
    encoding: str
    separator: str
    columns: dict[str, str]  # field -> the header it was read from


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def decode_export(raw: bytes) -> tuple[str, str]:
    """The text of an export and the encoding it was in."""
    if raw.startswith(codecs.BOM_UTF8):
        return _decode(raw[len(codecs.BOM_UTF8):], "utf-8"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(raw, "utf-16"), "utf-16"
    head = raw[:4096]
    if b"\x00" in head:
        # UTF-16 without BOM: every other byte of ASCII text is zero.
        if head[1::2].count(0) > len(head) // 4:
            return _decode(raw, "utf-16-le"), "utf-16-le"
        if head[0::2].count(0) > len(head) // 4:
            return _decode(raw, "utf-16-be"), "utf-16-be"
        raise UnreadableExport("this is not a text file (it contains binary data); "
                               "export the device list from Poly Lens as CSV")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode(raw, "cp1252"), "cp1252"


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise UnreadableExport(f"the text is not valid {encoding} (byte {error.start}); "
                               f"save the export as UTF-8 CSV") from None


def _separator(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: first_line.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # ties: comma first
    return best if counts[best] else ","


def _map_columns(headers: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, int]:
    keys = [header_key(h) for h in headers]
    found: dict[str, int] = {}
    for field, names in aliases.items():
        for name in names:
            if name in keys and keys.index(name) not in found.values():
                found[field] = keys.index(name)
                break
    return found


def _read_table(path: Path, aliases: dict[str, tuple[str, ...]]
                ) -> tuple[list[str], dict[str, int], list[tuple[int, list[str]]], str, str]:
    text, encoding = decode_export(path.read_bytes())
    separator = _separator(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    headers: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    row_number = 0
    try:
        for record in reader:
            row_number += 1  # spreadsheet numbering: blank lines keep their row
            if not any(cell.strip() for cell in record):
                continue
            if headers is None:
                headers = [cell.strip() for cell in record]
                continue
            records.append((row_number, record))
    except csv.Error as error:
        raise UnreadableExport(f"row {row_number + 1}: the CSV structure is broken ({error}); "
                               f"re-export the file") from None
    if headers is None:
        raise UnreadableExport("the file is empty: no header row")
    return headers, _map_columns(headers, aliases), records, encoding, separator


def _frame(headers: list[str], columns: dict[str, int], records: list[tuple[int, list[str]]],
           fields: tuple[str, ...]) -> pd.DataFrame:
    used = set(columns.values())
    data: dict[str, list] = {"row_number": [n for n, _ in records]}
    for field in fields:
        index = columns.get(field)
        data[field] = [(cells[index].strip() if index is not None and index < len(cells) else None)
                       for _, cells in records]
    data["extra_json"] = [
        json.dumps({(headers[i] if i < len(headers) else f"column {i + 1}"): cell
                    for i, cell in enumerate(cells)
                    if i not in used and (i < len(headers) or cell.strip())},
                   ensure_ascii=False, sort_keys=True)
        for _, cells in records]
    return pd.DataFrame(data)


def read_inventory_export(path: Path) -> ParsedExport:
    """A Lens device export: needs a model column and a serial, MAC or Lens id column."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    headers, columns, records, encoding, separator = _read_table(path, INVENTORY_ALIASES)
    if "model" not in columns:
        raise UnreadableExport(
            f"no model column: expected one of 'device_model', 'Model', 'hardwareModel', "
            f"'Hardware Model' or 'Product' in the header row (row 1), found: "
            f"{', '.join(repr(h) for h in headers)}")
    if not {"serial", "mac", "lens_device_id"} & columns.keys():
        raise UnreadableExport(
            f"no device identity column: expected a serial number ('Serial Number'), MAC "
            f"address ('MAC Address') or Lens device id ('Device ID') column in the header row "
            f"(row 1), found: {', '.join(repr(h) for h in headers)}")
    frame = _frame(headers, columns, records, tuple(INVENTORY_ALIASES))
    return ParsedExport(frame, encoding, separator,
                        {field: headers[i] for field, i in columns.items()})


def read_rma_log(path: Path) -> ParsedExport:
    """An RMA log: rma number, date (YYYY-MM-DD), serial, model."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    headers, columns, records, encoding, separator = _read_table(path, RMA_ALIASES)
    missing = [field for field in ("rma_number", "rma_date", "model") if field not in columns]
    if missing:
        wanted = {"rma_number": "'rma_number'", "rma_date": "'date'", "model": "'model'"}
        raise UnreadableExport(
            f"not an RMA log: the header row (row 1) lacks "
            f"{', '.join(wanted[m] for m in missing)}; found: "
            f"{', '.join(repr(h) for h in headers)}")
    frame = _frame(headers, columns, records, tuple(RMA_ALIASES)).drop(columns="extra_json")
    return ParsedExport(frame, encoding, separator,
                        {field: headers[i] for field, i in columns.items()})


# --- the Lens GraphQL API ---------------------------------------------------------------------

DEVICE_SEARCH = """
query PolyreconDeviceSearch($tenantId: ID!, $params: DeviceFindArgs) {
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
      }
    }
  }
}
"""
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
    def from_env(cls) -> "LensCredentials | None":
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
    connection errors, 5xx, 429 (honouring Retry-After) and 400 "rate limit" answers."""

    def __init__(self, token_url: str, graphql_url: str, credentials: LensCredentials,
                 retry: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep,
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
            params = {"pageSize": page_size}
            if next_token:
                params["nextToken"] = next_token
            data = self.query(DEVICE_SEARCH, {"tenantId": tenant_id, "params": params})
            tenant = (data or {}).get("tenant")
            if tenant is None:
                raise LensError(f"Lens knows no tenant {tenant_id!r} (or these credentials "
                                f"cannot reach it)")
            try:
                search = tenant["inventory"]["deviceSearch"]
                info = search["pageInfo"]
                page = DevicePage([edge["node"] for edge in search["edges"]],
                                  int(info["totalCount"]))
            except (KeyError, TypeError, ValueError) as error:
                raise LensError(f"unexpected answer from Lens (no {error} in deviceSearch)"
                                ) from None
            yield page
            if not info["hasNextPage"]:
                return
            next_token = info.get("nextToken")
            if not next_token:
                raise LensError("Lens said there is a next page but gave no nextToken; "
                                "the inventory cannot be read completely")

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
    return response.status_code == 400 and "rate limit" in response.text.lower()


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


def device_row(position: int, node: dict) -> dict:
    """A Lens device node as a raw inventory row (same columns as a CSV export)."""
    site, room = node.get("site") or {}, node.get("room") or {}
    extra = {key: node.get(key) for key in ("hardwareFamily", "hardwareProduct", "productId",
                                            "softwareVersion", "connected", "lastDetected")}
    extra.update(site_id=site.get("id"), room_id=room.get("id"))
    return {"row_number": position, "serial": node.get("serialNumber"),
            "mac": node.get("macAddress"),
            "model": node.get("hardwareModel") or node.get("hardwareProduct"),
            "site": site.get("name"), "room": room.get("name"),
            "lens_device_id": node.get("id"), "device_name": node.get("name"),
            "extra_json": json.dumps(extra, ensure_ascii=False, sort_keys=True)}
