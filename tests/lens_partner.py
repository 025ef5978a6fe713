"""A partner's Lens as issue 31 describes it, for the tests of `tenants`, the pulls and the
DAGs: five customer accounts in the fake Lens (tests/fake_lens.py). The partner's credential was
granted three of them, two in EU-1 and one in US-1; Ghost never accepted its request; Own
refuses cross-account grants and made a credential of its own (`lens_credential: own_lens`)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builders import contract, make_workspace, write_yaml
from fake_lens import FakeLens

from pipelines.core.workspace import Workspace

ALL = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0},
       "video": {"ordered_devices": 100, "unit_price_per_year": 180.0},
       "voice": {"ordered_devices": 100, "unit_price_per_year": 24.0}}
DEVICES = {"t-acme": 40, "t-bolt": 24, "t-extra": 16, "t-ghost": 8, "t-own": 12}
REGIONS = {"t-acme": "EU-1", "t-bolt": "US-1", "t-extra": "EU-1", "t-ghost": "EU-1",
           "t-own": "US-1"}
NAMES = {"t-acme": "Acme Holding", "t-bolt": "Bolt Retail", "t-extra": "Extra Labs",
         "t-ghost": "Ghost Bank", "t-own": "Own Clinic"}
OWN_CLIENT = "own-clinic-client"


@contextmanager
def partner_lens() -> Iterator[tuple[FakeLens, dict[str, str]]]:
    """The fake Lens, and the environment that names both credentials."""
    with FakeLens(DEVICES, sees={"t-acme", "t-bolt", "t-extra"}, regions=REGIONS,
                  names=NAMES) as fake:
        own_secret = fake.add_client(OWN_CLIENT, {"t-own"})
        yield fake, {"LENS_CLIENT_ID": fake.client_id, "LENS_CLIENT_SECRET": fake.client_secret,
                     "LENS_OWN_LENS_CLIENT_ID": OWN_CLIENT,
                     "LENS_OWN_LENS_CLIENT_SECRET": own_secret}


def partner_workspace(root: Path, fake: FakeLens, language: str = "en", term=None,
                      **lens) -> Workspace:
    """Acme, Bolt and Ghost on the partner's credential, Own on its own; `lens`: more of
    partner.yaml's `lens` settings."""
    term = term or ("2026-01-01", "2026-12-31")
    workspace = make_workspace(root, [
        contract("acme", categories=ALL, term=term, lens_tenant_id="t-acme"),
        contract("bolt", categories=ALL, term=term, lens_tenant_id="t-bolt"),
        contract("ghost", categories=ALL, term=term, lens_tenant_id="t-ghost",
                 partner_contacts=["ghost-desk@partner.example"]),
        contract("own", categories=ALL, term=term, lens_tenant_id="t-own",
                 lens_credential="own_lens")])
    write_yaml(workspace.partner_file, {
        "partner": {"name": "Nordlicht", "contact_email": "ops@partner.example",
                    "language": language},
        "lens": {"token_url": fake.token_url, "graphql_url": fake.graphql_url,
                 "page_size": 10, **lens}})
    return workspace
