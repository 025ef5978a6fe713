"""Which Poly Lens tenants the credentials see, mapped to contracts.yaml.

A partner's Lens credential reaches every customer account that accepted its access request
(Lens: "API Credentials with access to multiple Accounts"; each account must accept, and may
revoke). Nothing says when one has not: a pull fails on run day, and a tenant nobody mapped is
never reconciled. So each credential in use (the partner's, and each customer's own,
`lens_credential`) lists what it sees (`tenants`, every region), and each tenant is matched to
the customers whose `lens_tenant_id` it is: mapped; not mapped (no customer has it); and each
customer whose own credential cannot see its tenant (grant missing or revoked) or could not
list at all (not set, refused, Lens unreachable).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.config import Config, Customer
from pipelines.core.errors import ConfigError
from pipelines.lens_api.client import (
    DEFAULT_RETRY,
    CredentialLookup,
    LensClient,
    LensCredentials,
    LensError,
    LensTenant,
    RetryPolicy,
    credential_label,
    env_names,
)


@dataclass(frozen=True)
class CredentialView:
    """What one credential sees: its tenants, or why it could not list them."""
    name: str | None  # None: the partner's credential
    tenants: list[LensTenant]
    error: str | None
    customers: list[str]  # the customers pulled with it

    @property
    def label(self) -> str:
        return credential_label(self.name)


@dataclass(frozen=True)
class SeenTenant:
    """A tenant some credential sees, and the customers whose `lens_tenant_id` it is."""
    tenant: LensTenant
    credentials: list[str | None]  # the credentials that see it
    customers: list[str]

    @property
    def unmapped(self) -> bool:
        """No customer has it, and it holds devices (or Lens did not say): a tenant a partner
        may have forgotten. An empty one without a customer is no problem."""
        return not self.customers and self.tenant.devices != 0


@dataclass(frozen=True)
class HiddenCustomer:
    """A customer whose tenant its credential does not show: `not_visible` (the credential
    listed its tenants, this one is not among them) or `unchecked` (it could not list)."""
    customer_id: str
    tenant_id: str
    credential: str | None
    problem: str  # not_visible | unchecked
    detail: str


@dataclass(frozen=True)
class TenantMap:
    credentials: list[CredentialView]
    tenants: list[SeenTenant]
    hidden: list[HiddenCustomer]

    @property
    def unmapped(self) -> list[SeenTenant]:
        return [t for t in self.tenants if t.unmapped]

    @property
    def not_visible(self) -> list[HiddenCustomer]:
        return [h for h in self.hidden if h.problem == "not_visible"]


def map_tenants(config: Config, lookup: CredentialLookup = LensCredentials.from_env,
                retry: RetryPolicy = DEFAULT_RETRY) -> TenantMap:
    """Every tenant each credential in use sees, mapped to the customers. The partner's
    credential is listed when it is set or a customer is pulled with it; a ConfigError when no
    credential is set and no customer uses Lens (there is nothing to look at)."""
    customers = [c for c in config.contracts.customers if c.lens_tenant_id]
    partner = lookup(None)
    names: list[str | None] = list(dict.fromkeys(
        ([None] if partner or any(c.lens_credential is None for c in customers) else [])
        + [c.lens_credential for c in customers]))
    if not names:
        client_id, secret = env_names(None)
        raise ConfigError(f"no Lens credential is set and no customer in contracts.yaml has a "
                          f"lens_tenant_id: set {client_id} and {secret} (in Airflow: the "
                          f"connection polylens_api) to list the tenants the partner's "
                          f"credential sees")
    views = {name: _view(config, name, partner if name is None else lookup(name),
                         [c.id for c in customers if c.lens_credential == name], retry)
             for name in names}
    seen: dict[str, SeenTenant] = {}
    for view in views.values():
        for tenant in view.tenants:
            if tenant.id not in seen:
                seen[tenant.id] = SeenTenant(tenant, [], [c.id for c in customers
                                                          if c.lens_tenant_id == tenant.id])
            seen[tenant.id].credentials.append(view.name)
    hidden = [h for h in (_hidden(c, views[c.lens_credential], seen) for c in customers) if h]
    tenants = sorted(seen.values(), key=lambda t: ((t.tenant.name or "").casefold(),
                                                   t.tenant.id))
    return TenantMap(list(views.values()), tenants, hidden)


def _view(config: Config, name: str | None, credentials: LensCredentials | None,
          customers: list[str], retry: RetryPolicy) -> CredentialView:
    if credentials is None:
        client_id, secret = env_names(name)
        where = "polylens_api" if name is None else name
        return CredentialView(name, [], f"it is not set: set {client_id} and {secret} (in "
                                        f"Airflow: the connection {where})", customers)
    settings = config.partner.lens
    client = LensClient(settings.token_url, settings.graphql_url, credentials, retry)
    try:
        return CredentialView(name, client.tenants(), None, customers)
    except LensError as error:
        return CredentialView(name, [], str(error), customers)
    finally:
        client.close()


def _hidden(customer: Customer, view: CredentialView, seen: dict[str, SeenTenant]
            ) -> HiddenCustomer | None:
    tenant_id = customer.lens_tenant_id
    if view.error is not None:
        return HiddenCustomer(customer.id, tenant_id, view.name, "unchecked",
                              f"{view.label} could not list its tenants: {view.error}")
    if any(t.id == tenant_id for t in view.tenants):
        return None
    others = [credential_label(name) for name in seen[tenant_id].credentials] \
        if tenant_id in seen else []
    return HiddenCustomer(
        customer.id, tenant_id, view.name, "not_visible",
        f"{view.label} cannot see the tenant {tenant_id}: the customer has not accepted the "
        f"credential's access request in Poly Lens, or revoked it"
        + (f" (visible to {', '.join(others)} instead: choose that one with lens_credential)"
           if others else "")
        + "; ask the customer's Poly Lens admin to accept it, or correct lens_tenant_id in "
          "contracts.yaml")
