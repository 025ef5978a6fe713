"""`tenants`, and the same check where the DAGs run it: before the monthly run's pulls, and a
few days before run day, when the partner is e-mailed each problem while a grant can still be
fixed (one notice per problem and month).

The check itself is lens_api/tenants.py; here it is said in words (the command line's English),
turned into the problems the notices name, and sent through the mail ledger.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, date, datetime

from pipelines.core.config import Config
from pipelines.core.i18n import english
from pipelines.core.months import Month
from pipelines.core.visible import visible
from pipelines.delivery.mail import MailOutcome, send_lens_access
from pipelines.delivery.messages import LensAccessProblem
from pipelines.jobs.monthly import exclusive
from pipelines.lens_api.client import CredentialLookup, LensCredentials, env_names
from pipelines.lens_api.pull import pull_window_open
from pipelines.lens_api.tenants import SeenTenant, TenantMap, map_tenants

log = logging.getLogger("polyrecon")


def problems_of(tenant_map: TenantMap) -> list[LensAccessProblem]:
    """What the partner is told of: each customer whose credential cannot see its tenant, each
    tenant with devices and no customer, each credential that could not list its tenants."""
    found = [LensAccessProblem("credential", None, None, view.name, detail=view.error,
                               customers=tuple(view.customers))
             for view in tenant_map.credentials if view.error is not None]
    found += [LensAccessProblem("not_visible", hidden.customer_id, hidden.tenant_id,
                                hidden.credential, detail=hidden.detail)
              for hidden in tenant_map.not_visible]
    found += [LensAccessProblem("not_mapped", None, seen.tenant.id, seen.credentials[0],
                                seen.tenant.name, seen.tenant.region, seen.tenant.devices)
              for seen in tenant_map.unmapped]
    return found


def problem_lines(tenant_map: TenantMap, customer_id: str | None = None) -> list[str]:
    """Each problem in one English line (what the DAG's check names); with `customer_id`,
    only that customer's (a run for one customer is not about the other tenants)."""
    lines = [f"the customer {h.customer_id} (tenant {h.tenant_id}): {h.detail}"
             for h in tenant_map.hidden if customer_id in (None, h.customer_id)]
    if customer_id is None:
        lines += [f"the tenant {_tenant(seen)} is not mapped: no customer in contracts.yaml has "
                  f"it as lens_tenant_id, so its devices are not reconciled"
                  for seen in tenant_map.unmapped]
    return lines


def describe(config: Config, tenant_map: TenantMap) -> str:
    """`tenants` as partner ops read it: per credential what it sees, each tenant mapped or
    not, then the customers whose tenant is not visible and what to do."""
    lines = []
    for view in tenant_map.credentials:
        client_id, _ = env_names(view.name)
        head = f"{view.label[:1].upper()}{view.label[1:]} ({client_id})"
        if view.error is not None:
            lines.append(f"{head}: could not list its tenants: {view.error}")
            continue
        lines.append(f"{head} sees " + english("%(num)s tenant", "%(num)s tenants",
                                               len(view.tenants)) + ":")
        mine = {t.id for t in view.tenants}
        lines += [f"  {_row(seen)}" for seen in tenant_map.tenants if seen.tenant.id in mine]
    customers = [c for c in config.contracts.customers if c.lens_tenant_id]
    if tenant_map.hidden:
        lines.append("Customers whose tenant is not visible (their pulls fail until it is):")
        lines += [f"  {h.customer_id} (tenant {h.tenant_id}): {h.detail}"
                  for h in tenant_map.hidden]
    lines.append(f"Visible: {len(customers) - len(tenant_map.hidden)} of "
                 + english("%(num)s customer with a lens_tenant_id",
                           "%(num)s customers with a lens_tenant_id", len(customers))
                 + "; not mapped: "
                 + english("%(num)s tenant with devices", "%(num)s tenants with devices",
                           len(tenant_map.unmapped))
                 + "; not visible: "
                 + english("%(num)s customer", "%(num)s customers", len(tenant_map.hidden)))
    return "\n".join(lines)


def _row(seen: SeenTenant) -> str:
    tenant = seen.tenant
    devices = "devices not known" if tenant.devices is None else english(
        "%(num)s device", "%(num)s devices", tenant.devices)
    where = f"{_tenant(seen)}, region {visible(tenant.region or 'not known')}, {devices}"
    if seen.customers:
        return f"{where}: mapped to {', '.join(seen.customers)}"
    if seen.unmapped:
        return (f"{where}: NOT MAPPED: no customer in contracts.yaml has this lens_tenant_id; "
                f"add it to its customer, or leave it when it is no customer's")
    return f"{where}: no customer (and no devices)"


def _tenant(seen: SeenTenant) -> str:
    tenant = seen.tenant
    shown = visible(tenant.id)
    return f"{shown} ({visible(tenant.name)})" if tenant.name else shown


def check_before_pulls(config: Config, month: Month, customer_id: str | None,
                       lookup: CredentialLookup = LensCredentials.from_env,
                       today: date | None = None) -> dict:
    """The monthly run's check before its pulls (the DAG's `tenants`): each problem named in
    the log and returned, and the customers whose tenant is not visible, whose pulls then fail
    with the reason instead of asking Lens (the others go on). Nothing is checked when nothing
    will be pulled (no Lens customer, or the month's pull window has closed)."""
    today = today or datetime.now(UTC).date()
    lens = [c for c in config.contracts.customers
            if c.lens_tenant_id and customer_id in (None, c.id)]
    if not lens or not pull_window_open(month, today, config.partner.lens.pull_window_days):
        return {"checked": False, "problems": [], "blocked": {}}
    tenant_map = map_tenants(config, lookup)
    problems = problem_lines(tenant_map, customer_id)
    for line in problems:
        log.warning("Lens tenants: %s", line)
    blocked = {h.customer_id: h.detail for h in tenant_map.not_visible
               if customer_id in (None, h.customer_id)}
    return {"checked": True, "problems": problems, "blocked": blocked}


def notice_month(run_day: int, day: date) -> Month:
    """The month whose pull a check on `day` comes before: the month the next monthly run
    reconciles (it runs on `run_day` and takes the month before)."""
    month = Month.of(day)
    return month.plus(-1) if day.day <= run_day else month


def scheduled_check(config: Config, day: date,
                    lookup: CredentialLookup = LensCredentials.from_env) -> dict:
    """The check a few days before run day: the problems (as records a DAG task passes on) and
    the month their notices are for. A partner who uses no Lens API (no credential, no customer
    with a lens_tenant_id) has nothing to check."""
    if lookup(None) is None and not any(c.lens_tenant_id for c in config.contracts.customers):
        return {"month": str(notice_month(config.partner.schedule.run_day, day)),
                "problems": []}
    tenant_map = map_tenants(config, lookup)
    for line in problem_lines(tenant_map):
        log.warning("Lens tenants: %s", line)
    return notice_check(config, tenant_map, day)


def notice_check(config: Config, tenant_map: TenantMap, day: date) -> dict:
    """A check's problems as `notify` takes them (plain records: what a DAG task passes on),
    with the month their notices are for."""
    return {"month": str(notice_month(config.partner.schedule.run_day, day)),
            "problems": [asdict(p) for p in problems_of(tenant_map)]}


@exclusive("send")
def notify(config: Config, check: dict, login: tuple[str, str] | None = None) -> MailOutcome:
    """The notices of a check (`scheduled_check`'s), each problem once for its month."""
    problems = [LensAccessProblem(**{**p, "customers": tuple(p["customers"])})
                for p in check["problems"]]
    return send_lens_access(config, problems, Month.parse(check["month"]), login)
