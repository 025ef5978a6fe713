"""Errors a user can cause or fix. The CLI prints their message (no traceback) and exits."""


class UserError(Exception):
    """A problem the partner fixes; `str(error)` is the whole message."""

    exit_code = 1


class ConfigError(UserError):
    """Bad configuration or arguments: exit code 2 (interfaces.md)."""

    exit_code = 2


class RunError(UserError):
    """The run could not finish: exit code 1."""

    exit_code = 1


class LockBusy(RunError):
    """Another run holds the lock a job needs: exit code 1."""


class DamagedWarehouse(RunError):
    """The warehouse file cannot be read: `rebuild` re-creates it from archive/."""
