"""A fake Poly Lens API: a real HTTP server on loopback speaking Lens's shapes.

Token endpoint (`POST /oauth/token`, client credentials) and GraphQL endpoint (`POST /graphql`:
`tenants { id name deviceCount region { id } }`, and `tenant(id:) { id name region { id }
inventory { deviceSearch(params:) } }` paged with `pageSize` / `nextToken`, and
`calculateQueryCost` with a budget), answering in the shapes of the recorded answers in
fixtures/lens/ (its README cites each; or serving a recorded answer byte for byte), with faults
a test switches on: each transient fault fires `count` times, on the GraphQL request number
`at_request` and after. A tenant can be given a hostile handler instead, which writes whatever
answer it likes.

Credentials are Lens's partner form: each client sees the tenants that granted it access
(`sees`; the first client all of them unless told), in whichever region each tenant is
(`regions`, default US-1); a tenant it does not see is as unknown to it as one that does not
exist.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

# Lens's own vocabulary (data/README.md): the product name as hardwareModel, Lens's product id
# (the name itself for room systems and phones, a short hex id for USB headsets and
# accessories, a slug for Lens software), and how Lens identifies the device.
MODELS = (
    # hardwareModel, productId, hardwareFamily, category (data/README.md), networked
    ("Edge E350", "Edge E350", "Phone", "voice", True),
    ("Poly Studio X30", "Studio X30", "Video", "video", True),
    ("G 7500 Video Endpoint", "G 7500", "Video", "video", True),
    ("Voyager Focus 2 Series", "154", "Headset", "headset", False),
    ("Sync 20-M", "15d", "Speakerphone", "headset", False),
    ("Poly Trio C60", "Trio C60", "Phone", "voice", True),
    ("Voyager 5200 Charge Case", "d008", "Accessory", "not_counted", False),
    ("Lens Desktop Windows", "lens-desktop-windows", "Software", "not_counted", False),
)


def fake_device(tenant_id: str, index: int) -> dict:
    """Device `index` of a tenant, shaped like the recorded page (fixtures/lens/): a networked
    device's id is its MAC in lower-case hex and it often has no serial; USB devices have a
    serial and no MAC; `site` and `room` are often null."""
    model, product_id, family, _, networked = MODELS[index % len(MODELS)]
    tenant_byte = sum(tenant_id.encode()) & 255
    mac = (f"48:25:{tenant_byte:02x}:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:"
           f"{index & 255:02x}")
    serial = f"{tenant_id[:4].upper()}{index:08d}"
    site = (None if index % 11 == 0
            else {"id": f"7ff7c5ad-{index % 3:04d}", "name": f"Site {index % 3}"})
    room = None if index % 3 else {"id": f"room-{index % 40}", "name": f"Room {index % 40}"}
    return {"id": mac.replace(":", "") if networked else f"{product_id}-{serial.lower()}",
            "name": f"Device {index}",
            "serialNumber": serial if not networked or index % 2 else None,
            "macAddress": mac if networked else None,
            "hardwareFamily": family, "hardwareModel": model, "hardwareProduct": model,
            "productId": product_id, "softwareVersion": "8.6.0.1321",
            "connected": index % 5 != 0, "lastDetected": "2026-11-01T08:00:00.000Z",
            "site": site, "room": room}


def expected_counts(device_count: int) -> dict[str, int]:
    """Devices per counted category for a fake tenant, counted the simple way from MODELS."""
    counts: dict[str, int] = {}
    for index in range(device_count):
        category = MODELS[index % len(MODELS)][3]
        if category != "not_counted":
            counts[category] = counts.get(category, 0) + 1
    return counts


@dataclass
class Faults:
    token_503: int = 0            # token endpoint answers 503
    expire_tokens: int = 0        # GraphQL answers 401 "You must be logged in" (token expired)
    rate_limit_400: int = 0       # HTTP 400 whose message is `rate_limit_message`
    rate_limit_message: str = "Query cost rate limit exceeded, retry later"
    rate_limit_429: int = 0       # HTTP 429 with Retry-After
    bad_gateway_502: int = 0
    drop_connection: int = 0      # half a page, then the connection is closed
    at_request: int = 3           # GraphQL request from which transient faults fire
    retry_after: str = "1"
    empty_next_token: bool = False       # hasNextPage true, nextToken "" (permanent)
    total_count_offset: int = 0          # totalCount disagrees with the rows (permanent)
    search_error: str | None = None      # deviceSearch answers with its own `error` (permanent)
    token_redirect: str | None = None    # token endpoint answers 307 to this URL (permanent)
    expires_soon: int = 0                # token answers with `expires_in: "soon"`


@dataclass
class FakeLens:
    tenants: dict[str, int]  # tenant id -> number of devices
    client_id: str = "polyrecon-test-client"
    client_secret: str = field(default_factory=lambda: "sec-" + secrets.token_hex(16))
    # The tenants the client above sees (None: all); `add_client` makes others.
    sees: set[str] | None = None
    regions: dict[str, str] = field(default_factory=dict)  # tenant id -> region id (US-1)
    names: dict[str, str] = field(default_factory=dict)  # tenant id -> its display name
    # The `tenants` answer served byte for byte instead of a generated one.
    recorded_tenants: bytes | None = None
    token_lifetime: int = 86400
    faults: Faults = field(default_factory=Faults)
    graphql_requests: int = 0
    token_requests: int = 0
    issued_tokens: list[str] = field(default_factory=list)
    graphql_clients: list[str] = field(default_factory=list)  # the client of each query
    page_sizes: list[int] = field(default_factory=list)
    sorts: list = field(default_factory=list)  # the sort each page was asked with
    # Answers served byte for byte instead of generated pages (a recorded page per tenant).
    recorded: dict[str, bytes] = field(default_factory=dict)
    # The query-cost budget: each page costs 1 + pageSize / 10 out of `budget` per
    # `budget_window` seconds; a page over it gets HTTP 400 "over limit". None: no limit.
    budget: int | None = None
    budget_window: float = 1.0
    refused_over_budget: int = 0
    # tenant id -> a handler that writes the whole answer to each of its GraphQL requests
    # (given the handler and the request's variables): a hostile Lens.
    hostile: dict[str, Callable[[BaseHTTPRequestHandler, dict], None]] = field(
        default_factory=dict)

    def __post_init__(self):
        self._lock = threading.Lock()
        # client id -> (secret, the tenants it sees or None for all)
        self._clients: dict[str, tuple[str, set[str] | None]] = {
            self.client_id: (self.client_secret, self.sees)}
        self._token_clients: dict[str, str] = {}  # token -> client id
        self._valid_tokens: set[str] = set()
        self._token_uses: dict[str, int] = {}
        self._spent: list[tuple[float, int]] = []  # (when, cost) within the budget window
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/oauth/token":
                    fake._token(self, payload)
                elif self.path == "/graphql":
                    fake._graphql(self, payload)
                else:
                    fake._send(self, 404, {"errors": [{"message": "Not found"}]})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_client(self, client_id: str, sees: set[str]) -> str:
        """Another API credential, seeing `sees` (a customer's own); its secret."""
        secret = "sec-" + secrets.token_hex(16)
        with self._lock:
            self._clients[client_id] = (secret, set(sees))
        return secret

    def grant(self, tenant_id: str, client_id: str | None = None) -> None:
        """The tenant's account accepts the client's access request (default: the first
        client's)."""
        with self._lock:
            secret, sees = self._clients[client_id or self.client_id]
            if sees is not None:
                self._clients[client_id or self.client_id] = (secret, sees | {tenant_id})

    def all_secrets(self) -> list[str]:
        """Every client secret and token issued: what must never be written or printed."""
        with self._lock:
            return [secret for secret, _ in self._clients.values()] + list(self.issued_tokens)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/graphql"

    # --- answers -------------------------------------------------------------------------

    @classmethod
    def _send(cls, handler, status: int, body: dict, headers: dict | None = None) -> None:
        cls._send_raw(handler, status, json.dumps(body).encode(), headers)

    @staticmethod
    def _send_raw(handler, status: int, data: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _take(self, name: str) -> bool:
        """Fire a counted fault once, if it is armed."""
        with self._lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    def _token(self, handler, payload: dict) -> None:
        with self._lock:
            self.token_requests += 1
        if self._take("token_503"):
            return self._send(handler, 503, {"message": "Service Unavailable"})
        if self.faults.token_redirect:
            return self._send(handler, 307, {}, {"Location": self.faults.token_redirect})
        client = self._clients.get(payload.get("client_id"))
        if (payload.get("grant_type") != "client_credentials" or client is None
                or payload.get("client_secret") != client[0]):
            return self._send(handler, 401, {"error": "invalid_client"})
        token = "tok-" + secrets.token_hex(12)
        with self._lock:
            self._valid_tokens.add(token)
            self._token_clients[token] = payload["client_id"]
            self.issued_tokens.append(token)
        self._send(handler, 200, {"access_token": token, "token_type": "Bearer",
                                  "expires_in": "soon" if self._take("expires_soon")
                                  else self.token_lifetime})

    def _graphql(self, handler, payload: dict) -> None:
        with self._lock:
            self.graphql_requests += 1
            number = self.graphql_requests
        token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self._valid_tokens:
            return self._send(handler, 401, {"errors": [{
                "message": "You must be logged in to run this query",
                "extensions": {"code": "UNAUTHENTICATED"}}]})
        with self._lock:
            self.graphql_clients.append(self._token_clients[token])
            self._token_uses[token] = self._token_uses.get(token, 0) + 1
            seasoned = self._token_uses[token] > 2  # a token expires after it served a while
        if number >= self.faults.at_request:
            if seasoned and self._take("expire_tokens"):
                with self._lock:
                    self._valid_tokens.discard(token)
                return self._send(handler, 401, {"errors": [{
                    "message": "Authorization failed", "extensions": {"code": "UNAUTHENTICATED"}}]})
            if self._take("rate_limit_400"):
                return self._send(handler, 400, {"errors": [{
                    "message": self.faults.rate_limit_message,
                    "extensions": {"code": "RATE_LIMITED"}}]})
            if self._take("rate_limit_429"):
                return self._send(handler, 429, {"errors": [{"message": "Too many requests"}]},
                                  {"Retry-After": self.faults.retry_after})
            if self._take("bad_gateway_502"):
                return self._send(handler, 502, {"message": "Bad Gateway"})
            if self._take("drop_connection"):
                return self._drop(handler, payload, self._visible(token))
        query = payload.get("query", "")
        visible = self._visible(token)
        if "tenants {" in query and "deviceSearch" not in query:
            if self.recorded_tenants is not None:
                return self._send_raw(handler, 200, self.recorded_tenants)
            return self._send(handler, 200, {"data": {"tenants": [
                self._tenant(tenant_id, query) for tenant_id in self.tenants
                if tenant_id in visible]}})
        if "deviceSearch(params: $params)" not in query or "tenant(id: $tenantId)" not in query:
            return self._send(handler, 400, {"errors": [{
                "message": "Cannot query this shape", "extensions": {
                    "code": "GRAPHQL_VALIDATION_FAILED"}}]})
        variables = payload.get("variables") or {}
        if variables.get("tenantId") in self.hostile:
            return self.hostile[variables["tenantId"]](handler, variables)
        if variables.get("tenantId") in self.recorded:
            return self._send_raw(handler, 200, self.recorded[variables["tenantId"]])
        cost = 1 + int((variables.get("params") or {}).get("pageSize", 10)) // 10
        remaining = self._charge(cost)
        if remaining is None:
            return self._send(handler, 400, {"errors": [{
                "message": "Query cost is over limit for this period",
                "extensions": {"code": "RATE_LIMITED"}}]})
        answer = self._device_search(variables, query, visible)
        if "calculateQueryCost" in query:
            answer.setdefault("data", {})["calculateQueryCost"] = {
                "queryCost": cost, "costUsed": (self.budget or 100_000) - remaining,
                "costRemaining": remaining, "secondsToReset": self._seconds_to_reset()}
        self._send(handler, 200, answer)

    def _visible(self, token: str) -> set[str]:
        """The tenants the token's client sees."""
        with self._lock:
            sees = self._clients[self._token_clients[token]][1]
        return set(self.tenants) if sees is None else sees & set(self.tenants)

    def _tenant(self, tenant_id: str, query: str) -> dict:
        """A tenant with the fields the query asks of it, as Lens's docs show them: `id`,
        `name`, `deviceCount` (Platform Management queries) and `region { id }` (Regional
        Availability)."""
        fields = {"id": tenant_id, "name": self.names.get(tenant_id, f"Tenant {tenant_id}"),
                  "deviceCount": self.tenants[tenant_id],
                  "region": {"id": self.regions.get(tenant_id, "US-1")}}
        return {key: value for key, value in fields.items()
                if key == "id" or re.search(rf"\b{key}\b", query)}

    def _charge(self, cost: int) -> int | None:
        """Spend `cost` of the budget; what is left, or None when it is over the limit."""
        budget = self.budget or 100_000
        with self._lock:
            now = time.monotonic()
            self._spent = [(at, c) for at, c in self._spent if now - at < self.budget_window]
            left = budget - sum(c for _, c in self._spent)
            if self.budget is not None and cost > left:
                self.refused_over_budget += 1
                return None
            self._spent.append((now, cost))
            return left - cost

    def _seconds_to_reset(self) -> float:
        with self._lock:
            if not self._spent:
                return 0.0
            return round(max(0.0, self.budget_window - (time.monotonic() - self._spent[0][0])), 3)

    def _drop(self, handler, payload: dict, visible: set[str]) -> None:
        data = json.dumps(self._device_search(payload.get("variables") or {},
                                              payload.get("query", ""), visible)).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.close()

    def _device_search(self, variables: dict, query: str, visible: set[str]) -> dict:
        tenant_id = variables.get("tenantId")
        if tenant_id not in visible:
            return {"data": {"tenant": None}, "errors": [{
                "message": f"Tenant {tenant_id} not found", "path": ["tenant"],
                "locations": [{"line": 3, "column": 3}], "extensions": {"code": "NOT_FOUND"}}]}
        params = variables.get("params") or {}
        size = int(params.get("pageSize", 10))
        if not 1 <= size <= 5000:
            return {"data": None, "errors": [{"message": "pageSize must be between 1 and 5000",
                                              "extensions": {"code": "BAD_USER_INPUT"}}]}
        with self._lock:
            self.page_sizes.append(size)
            self.sorts.append(params.get("sort"))
        token = params.get("nextToken")
        start = int(base64.b64decode(token).decode().split(":")[1]) if token else 0
        total = self.tenants[tenant_id]
        end = min(total, start + size)
        has_next = end < total
        next_token = base64.b64encode(f"{tenant_id}:{end}".encode()).decode() if has_next else None
        if has_next and self.faults.empty_next_token and start > 0:
            next_token = ""
        tenant = {key: value for key, value in self._tenant(tenant_id, query).items()
                  if key != "deviceCount"}
        if self.faults.search_error:
            return {"data": {"tenant": {**tenant, "inventory": {"deviceSearch": {
                "edges": [], "pageInfo": {"hasNextPage": False, "nextToken": None,
                                          "totalCount": 0},
                "error": self.faults.search_error}}}}}
        return {"data": {"tenant": {**tenant, "inventory": {"deviceSearch": {
            "edges": [{"node": fake_device(tenant_id, i)} for i in range(start, end)],
            "pageInfo": {"hasNextPage": has_next, "nextToken": next_token,
                         "totalCount": total + self.faults.total_count_offset},
            "error": None}}}}}
