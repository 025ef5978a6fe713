"""A deadline for each request to Lens: the read timeout restarts with every byte, so only a
watchdog that shuts the session's sockets ends an answer that drips for ever."""
from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Iterator

import requests
from requests.adapters import HTTPAdapter


class Watchdog:
    """Cuts a request off at its deadline. The read timeout restarts with every byte, so an
    answer that drips (its headers or its body) would hold a read for ever: at the deadline
    this shuts the sockets of the client's session, which ends any read blocked on them."""

    def __init__(self):
        self._sockets: weakref.WeakSet = weakref.WeakSet()
        self.fired = False

    def session(self) -> requests.Session:
        session = requests.Session()
        adapter = WatchedAdapter(self._sockets)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    @contextlib.contextmanager
    def armed(self, seconds: float) -> Iterator[None]:
        self.fired = False
        timer = threading.Timer(seconds, self._fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()  # no timer outlives its request, none fires into the next one

    def _fire(self) -> None:
        self.fired = True
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                # The plain socket's shutdown: an SSL socket's own would also drop its TLS
                # state under the reading thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class WatchedAdapter(HTTPAdapter):
    """An adapter whose connections (direct or through a proxy) hand their sockets, once
    connected, to a watchdog."""

    def __init__(self, sockets: weakref.WeakSet):
        self._sockets = sockets
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._watch(self.poolmanager)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        return self._watch(super().proxy_manager_for(proxy, **proxy_kwargs))

    def _watch(self, manager):
        if not getattr(manager, "polyrecon_watched", False):
            manager.pool_classes_by_scheme = {
                scheme: type(pool.__name__, (pool,), {"ConnectionCls": type(
                    pool.ConnectionCls.__name__, (Registered, pool.ConnectionCls),
                    {"sockets": self._sockets})})
                for scheme, pool in manager.pool_classes_by_scheme.items()}
            manager.polyrecon_watched = True
        return manager


class Registered:
    """Mixed into a urllib3 connection class: its socket goes to `sockets` once connected."""
    sockets: weakref.WeakSet

    def connect(self) -> None:
        super().connect()
        self.sockets.add(self.sock)
