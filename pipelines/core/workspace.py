"""The workspace folder layout of interfaces.md, resolved from --home / POLYRECON_HOME."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.months import Month
from pipelines.core.visible import visible

HOME_ENV = "POLYRECON_HOME"
DEFAULT_HOME = Path("var")


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None) -> Workspace:
        chosen = home or os.environ.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(chosen).expanduser().absolute())

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def partner_file(self) -> Path:
        return self.config_dir / "partner.yaml"

    @property
    def contracts_file(self) -> Path:
        return self.config_dir / "contracts.yaml"

    @property
    def catalog_file(self) -> Path:
        return self.config_dir / "catalog.csv"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    def reports_for(self, month: Month) -> Path:
        return self.home / "reports" / str(month)

    def folders(self) -> list[Path]:
        return [self.config_dir, self.inbox, self.archive, self.quarantine,
                self.home / "reports", self.outbox]

    def relative(self, path: Path) -> str:
        """A path as the partner sees it: relative to the workspace when inside it."""
        try:
            return str(path.relative_to(self.home))
        except ValueError:
            return str(path)


def shown_path(customer_id: str | None, name: str) -> str:
    """Where the partner put an upload, as every message names it (control characters and
    the like shown as escapes)."""
    name = visible(name)
    return f"inbox/{customer_id}/{name}" if customer_id else f"inbox/{name}"
