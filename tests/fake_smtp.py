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
