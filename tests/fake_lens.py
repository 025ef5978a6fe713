"""A fake Poly Lens API: a real HTTP server on loopback speaking Lens's shapes.

Token endpoint (`POST /oauth/token`, client credentials) and GraphQL endpoint (`POST /graphql`,
`tenant(id:) { inventory { deviceSearch(params:) } }` paged with `pageSize` / `nextToken`), with
faults a test switches on: each transient fault fires `count` times, on the GraphQL request
number `at_request` and after.
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = (("Poly Studio X30", "Video"), ("Polycom VVX 450", "Phone"),
          ("Poly Voyager Focus 2 Series", "Headset"), ("Poly Sync 20-M", "Headset"),
          ("Poly RealPresence DMA 7000", "Infrastructure"))


def fake_device(tenant_id: str, index: int) -> dict:
    """Device `index` of a tenant: stable, with the nulls Lens really sends (room, site)."""
    model, family = MODELS[index % len(MODELS)]
    site = None if index % 11 == 0 else {"id": f"site-{index % 3}", "name": f"Site {index % 3}"}
    room = None if index % 7 == 0 else {"id": f"room-{index % 40}", "name": f"Room {index % 40}"}
    return {"id": f"{tenant_id}-dev-{index:07d}", "name": f"Device {index}",
            "serialNumber": f"{tenant_id[:4].upper()}{index:08d}",
            "macAddress": f"00:04:f2:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:{index & 255:02x}",
            "hardwareFamily": family, "hardwareModel": model, "hardwareProduct": model,
            "productId": "prod-" + str(index % len(MODELS)), "softwareVersion": "4.1.0",
            "connected": index % 5 != 0, "lastDetected": "2026-11-01T08:00:00Z",
            "site": site, "room": room}


def expected_counts(device_count: int) -> dict[str, int]:
    """Devices per category for a fake tenant, counted the simple way."""
    category = {"Poly Studio X30": "video", "Polycom VVX 450": "voice",
                "Poly Voyager Focus 2 Series": "headset", "Poly Sync 20-M": "headset",
                "Poly RealPresence DMA 7000": "quote_only"}
    counts: dict[str, int] = {}
    for index in range(device_count):
        name = category[MODELS[index % len(MODELS)][0]]
        counts[name] = counts.get(name, 0) + 1
    return counts


@dataclass
class Faults:
    token_503: int = 0            # token endpoint answers 503
    expire_tokens: int = 0        # GraphQL answers 401 "You must be logged in" (token expired)
    rate_limit_400: int = 0       # HTTP 400 whose body mentions "rate limit"
    rate_limit_429: int = 0       # HTTP 429 with Retry-After
    bad_gateway_502: int = 0
    drop_connection: int = 0      # half a page, then the connection is closed
    at_request: int = 3           # GraphQL request from which transient faults fire
    retry_after: str = "1"
    empty_next_token: bool = False       # hasNextPage true, nextToken "" (permanent)
    total_count_offset: int = 0          # totalCount disagrees with the rows (permanent)


@dataclass
class FakeLens:
    tenants: dict[str, int]  # tenant id -> number of devices
    client_id: str = "polyrecon-test-client"
    client_secret: str = field(default_factory=lambda: "sec-" + secrets.token_hex(16))
    token_lifetime: int = 86400
    faults: Faults = field(default_factory=Faults)
    graphql_requests: int = 0
    token_requests: int = 0
    issued_tokens: list[str] = field(default_factory=list)
    page_sizes: list[int] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._valid_tokens: set[str] = set()
        self._token_uses: dict[str, int] = {}
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

    def __enter__(self) -> "FakeLens":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

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

    @staticmethod
    def _send(handler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
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
        if (payload.get("grant_type") != "client_credentials"
                or payload.get("client_id") != self.client_id
                or payload.get("client_secret") != self.client_secret):
            return self._send(handler, 401, {"error": "invalid_client"})
        token = "tok-" + secrets.token_hex(12)
        with self._lock:
            self._valid_tokens.add(token)
            self.issued_tokens.append(token)
        self._send(handler, 200, {"access_token": token, "token_type": "Bearer",
                                  "expires_in": self.token_lifetime})

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
                    "message": "Query cost rate limit exceeded, retry later",
                    "extensions": {"code": "RATE_LIMITED"}}]})
            if self._take("rate_limit_429"):
                return self._send(handler, 429, {"errors": [{"message": "Too many requests"}]},
                                  {"Retry-After": self.faults.retry_after})
            if self._take("bad_gateway_502"):
                return self._send(handler, 502, {"message": "Bad Gateway"})
            if self._take("drop_connection"):
                return self._drop(handler, payload)
        query = payload.get("query", "")
        if "deviceSearch(params: $params)" not in query or "tenant(id: $tenantId)" not in query:
            return self._send(handler, 400, {"errors": [{
                "message": "Cannot query this shape", "extensions": {
                    "code": "GRAPHQL_VALIDATION_FAILED"}}]})
        self._send(handler, 200, self._device_search(payload.get("variables") or {}))

    def _drop(self, handler, payload: dict) -> None:
        data = json.dumps(self._device_search(payload.get("variables") or {})).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.close()

    def _device_search(self, variables: dict) -> dict:
        tenant_id = variables.get("tenantId")
        if tenant_id not in self.tenants:
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
        token = params.get("nextToken")
        start = int(base64.b64decode(token).decode().split(":")[1]) if token else 0
        total = self.tenants[tenant_id]
        end = min(total, start + size)
        has_next = end < total
        next_token = base64.b64encode(f"{tenant_id}:{end}".encode()).decode() if has_next else None
        if has_next and self.faults.empty_next_token and start > 0:
            next_token = ""
        return {"data": {"tenant": {"inventory": {"deviceSearch": {
            "edges": [{"node": fake_device(tenant_id, i)} for i in range(start, end)],
            "pageInfo": {"hasNextPage": has_next, "nextToken": next_token,
                         "totalCount": total + self.faults.total_count_offset}}}}}}
