"""A real SMTP server (aiosmtpd) on loopback for the tests, beside fake_lens.py: it keeps every
message it accepts, bounces one address with 550, can demand a login, can answer QUIT with
another code than 221, and can go down and come back on the same port (an outage between two
runs)."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An SMTP handler that keeps every delivered message; one address bounces (550)."""

    bouncing = "bounce@example.com"

    def __init__(self, quit_answer: str | None = None):
        self.messages = []  # (recipients, message)
        self.quit_answer = quit_answer  # e.g. "421 …": a server whose session timed out

    @property
    def subjects(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(message["Subject"], tuple(recipients)) for recipients, message in self.messages]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.bouncing:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        from aiosmtpd.smtp import MISSING

        return self.quit_answer or MISSING

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted"


class Server:
    """The server on a port of its own; with `login` (user, password) it accepts only that."""

    def __init__(self, login: tuple[str, str] | None = None, quit_answer: str | None = None):
        self.inbox, self.port, self.login, self.controller = (Inbox(quit_answer), free_port(),
                                                              login, None)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        given = (auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) \
            else None
        return AuthResult(success=given == tuple(part.encode() for part in self.login))

    def start(self):
        extra = {"auth_require_tls": False, "authenticator": self._authenticate} if self.login \
            else {}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


class DrippingServer:
    """An SMTP server that answers one byte at a time, every `every` seconds, without end:
    from its greeting (`where="greeting"`), or only its answer to a message's data
    (`where="message"`, everything before answered at once). smtplib's timeout, per read, never
    trips on it. A raw socket server: aiosmtpd answers whole lines."""

    def __init__(self, where: str, every: float = 0.2):
        import threading

        self.where, self.every, self.port = where, every, free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.listener.close()

    def _drip(self, conn) -> None:
        while not self.stopped.wait(self.every):
            conn.sendall(b"2")  # a reply line that never ends

    def _serve(self) -> None:
        import contextlib

        with contextlib.suppress(OSError):
            while not self.stopped.is_set():
                conn, _ = self.listener.accept()
                with conn, contextlib.suppress(OSError):
                    if self.where == "greeting":
                        self._drip(conn)
                        continue
                    reader = conn.makefile("rb")
                    conn.sendall(b"220 drip.example ESMTP\r\n")
                    for line in reader:
                        command = line[:4].upper()
                        if command == b"DATA":
                            conn.sendall(b"354 go on\r\n")
                            for body_line in reader:
                                if body_line == b".\r\n":
                                    break
                            self._drip(conn)
                            break
                        if command == b"QUIT":
                            conn.sendall(b"221 bye\r\n")
                            break
                        conn.sendall(b"250 ok\r\n")
