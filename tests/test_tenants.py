"""Lens as a partner uses it (issue 31): one credential across many customer tenants in two
regions, a customer with a credential of its own, a grant never accepted, a tenant nobody
mapped — through the real command line against the fake Lens, a real HTTP server answering in
the shapes of Lens's documented and recorded answers (fixtures/lens/README.md cites each). The
partner's Lens is tests/lens_partner.py's."""
import os
import subprocess
import sys
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from builders import (
    cli,
    contract,
    make_workspace,
    reconciliation,
    row_for,
    warehouse_rows,
    write_yaml,
)
from fake_lens import FakeLens, expected_counts
from lens_partner import DEVICES, OWN_CLIENT, partner_lens, partner_workspace

from pipelines.core.config import load_config
from pipelines.core.months import Month
from pipelines.jobs.dag_support import tenant_check_cron
from pipelines.jobs.tenants import notice_month, notify, scheduled_check

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lens"


def test_tenants_maps_what_each_credential_sees(tmp_path, monkeypatch, capsys):
    with partner_lens() as (fake, env):
        workspace = partner_workspace(tmp_path, fake)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = cli(workspace, "tenants")
        shown = capsys.readouterr().out
        assert code == 1  # Ghost's tenant is not visible
        assert "The partner's credential (LENS_CLIENT_ID) sees 3 tenants:" in shown
        assert "  t-acme (Acme Holding), region EU-1, 40 devices: mapped to acme" in shown
        assert "  t-bolt (Bolt Retail), region US-1, 24 devices: mapped to bolt" in shown
        assert ("  t-extra (Extra Labs), region EU-1, 16 devices: NOT MAPPED: no customer in "
                "contracts.yaml has this lens_tenant_id") in shown
        assert "The credential own_lens (LENS_OWN_LENS_CLIENT_ID) sees 1 tenant:" in shown
        assert "  t-own (Own Clinic), region US-1, 12 devices: mapped to own" in shown
        assert ("  ghost (tenant t-ghost): the partner's credential cannot see the tenant "
                "t-ghost: the customer has not accepted the credential's access request in "
                "Poly Lens, or revoked it; ask the customer's Poly Lens admin to accept it"
                ) in shown
        assert "Ghost Bank" not in shown  # what the credential cannot see, it does not list
        assert ("Visible: 3 of 4 customers with a lens_tenant_id; not mapped: 1 tenant with "
                "devices; not visible: 1 customer") in shown

        fake.grant("t-ghost")  # Ghost's admin accepts the request
        assert cli(workspace, "tenants") == 0  # an unmapped tenant is told, not a failure
        shown = capsys.readouterr().out
        assert "  t-ghost (Ghost Bank), region EU-1, 8 devices: mapped to ghost" in shown
        assert "NOT MAPPED" in shown

        monkeypatch.delenv("LENS_OWN_LENS_CLIENT_SECRET")
        assert cli(workspace, "tenants") == 1
        shown = capsys.readouterr().out
        # Its pull fails alone, saying what to set.
        assert cli(workspace, "ingest", "--customer", "own") == 1
        assert ("Lens API own (tenant t-own): the credential own_lens of this customer "
                "(contracts.yaml lens_credential) is not set: no Lens API pull (set "
                "LENS_OWN_LENS_CLIENT_ID and LENS_OWN_LENS_CLIENT_SECRET (in Airflow: the "
                "connection own_lens), or upload Lens exports to the inbox)"
                ) in capsys.readouterr().out
    assert ("The credential own_lens (LENS_OWN_LENS_CLIENT_ID): could not list its tenants: it "
            "is not set: set LENS_OWN_LENS_CLIENT_ID and LENS_OWN_LENS_CLIENT_SECRET (in "
            "Airflow: the connection own_lens)") in shown
    assert "  own (tenant t-own): the credential own_lens could not list its tenants" in shown


def test_a_customer_with_its_own_credential_is_pulled_with_it_and_no_secret_is_kept(tmp_path):
    month = str(Month.of(date.today()))
    with partner_lens() as (fake, env):
        workspace = partner_workspace(tmp_path, fake)
        done = subprocess.run([sys.executable, "-m", "pipelines", "run", "--month", month,
                               "--home", str(workspace.home)], cwd=ROOT, capture_output=True,
                              env={**os.environ, **env}, check=False)
        secrets = fake.all_secrets()
        clients = set(fake.graphql_clients)
    assert done.returncode == 1, done.stderr[-2000:]  # Ghost's pull failed, the rest went on
    printed = done.stdout.decode() + done.stderr.decode()
    assert "Lens API ghost (tenant t-ghost): pull failed, nothing stored" in printed
    rows = reconciliation(workspace, month)
    for customer_id, tenant in (("acme", "t-acme"), ("bolt", "t-bolt"), ("own", "t-own")):
        for category, count in expected_counts(DEVICES[tenant]).items():
            assert row_for(rows, customer_id, category)["devices_counted"] == str(count)
    assert row_for(rows, "ghost", "video")["status"] == "NO_DATA"
    # The partner's credential cannot see t-own: Own's inventory came through its own.
    assert clients == {fake.client_id, OWN_CLIENT}
    pulls = warehouse_rows(workspace, "SELECT customer_id, outcome, region FROM lens_pulls "
                                      "ORDER BY customer_id", [])
    assert pulls == [("acme", "loaded", "EU-1"), ("bolt", "loaded", "US-1"),
                     ("ghost", "failed", None), ("own", "loaded", "US-1")]
    [kept] = (workspace.archive / "acme" / month).glob("lens-api-*.csv")
    assert kept.name.endswith("-region-EU-1.csv")
    report = (workspace.home / "reports" / month / "acme.html").read_text(encoding="utf-8")
    assert "Poly Lens region: EU-1." in report
    assert len(secrets) >= 4  # two client secrets, a token each at least
    written = [path for path in workspace.home.rglob("*") if path.is_file()]
    for secret in map(str.encode, secrets):
        assert secret not in done.stdout
        assert secret not in done.stderr
        for path in written:
            assert secret not in path.read_bytes(), path

    # A warehouse made again from archive/ keeps each pull's region (its file's name says it).
    assert cli(workspace, "rebuild") == 0
    assert warehouse_rows(workspace, "SELECT customer_id, region FROM lens_pulls ORDER BY "
                                     "customer_id", []) == [
        ("acme", "EU-1"), ("bolt", "US-1"), ("own", "US-1")]


def _notices(workspace) -> dict[str, tuple[list[str], str, str]]:
    """The Lens access notices in outbox/: file name → (recipients, subject, text)."""
    found = {}
    for path in sorted(workspace.outbox.rglob("lens_access-*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[path.relative_to(workspace.outbox).as_posix()] = (
            # the e-mail package folds a long subject after "Subject:"
            message["To"].split(", "), message["Subject"].strip(),
            message.get_body(("plain",)).get_content())
    return found


def test_the_partner_hears_of_each_problem_once_a_month(tmp_path, monkeypatch, capsys):
    with partner_lens() as (fake, env):
        workspace = partner_workspace(tmp_path, fake, language="de")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli(workspace, "tenants", "--notify") == 1
        first = _notices(workspace)
        assert "E-mail: 2 new, 2 sent" in capsys.readouterr().out
        month = str(notice_month(3, date.today()))
        ghost, extra = (next(v for k, v in first.items() if k.startswith(f"{month}/{kind}"))
                        for kind in ("lens_access-ghost-", "lens_access-partner-"))
        assert ghost[0] == ["ghost-desk@partner.example"]
        assert ghost[1] == (f"[Nordlicht] Poly Lens: kein Zugriff auf das Konto von Ghost GmbH "
                            f"({month})")
        assert "Der Lens-API-Zugang des Partners kann das Poly-Lens-Konto (Tenant) t-ghost" \
            in ghost[2]
        assert extra[0] == ["ops@partner.example"]
        assert extra[1] == f"[Nordlicht] Poly-Lens-Konto ohne Kunden: Extra Labs ({month})"
        assert "(ID t-extra, Region EU-1, 16 Geräte)" in extra[2]

        assert cli(workspace, "tenants", "--notify") == 1  # the check again: nothing twice
        assert "E-mail: 0 new, 0 sent" in capsys.readouterr().out
        assert _notices(workspace) == first

        # The month after, the problems that last are told again, once.
        config = load_config(workspace)
        later = Month.parse(month).plus(1).first_day + timedelta(days=27)
        check = scheduled_check(config, later)
        assert check["month"] == str(Month.parse(month).plus(1))
        assert notify(config, check).queued == 2
        assert notify(config, check).queued == 0
    assert len(_notices(workspace)) == 4


def test_a_recorded_tenants_answer_is_read(tmp_path, monkeypatch, capsys):
    recorded = (FIXTURES / "lens-docs-tenants.json").read_bytes()
    with FakeLens({}, recorded_tenants=recorded) as fake:
        workspace = make_workspace(tmp_path, [contract("acme")])
        write_yaml(workspace.partner_file, {"lens": {"token_url": fake.token_url,
                                                     "graphql_url": fake.graphql_url}})
        monkeypatch.setenv("LENS_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("LENS_CLIENT_SECRET", fake.client_secret)
        assert cli(workspace, "tenants") == 0
    assert ("  695xxxxx-bxxx-4xxx-axxx-109xxxxxxxxx (DFossDemo), region not known, 295 devices: "
            "NOT MAPPED") in capsys.readouterr().out


def test_a_credential_name_that_cannot_name_a_variable_is_refused(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("own", lens_tenant_id="t-own",
                                                   lens_credential="own-lens")])
    assert cli(workspace, "tenants") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("contracts.yaml: customer 'own': lens_credential: 'own-lens' is not "
                           "a credential name: use letters, digits and '_'")


def test_the_scheduled_check_comes_three_to_six_days_before_each_run_for_its_month(tmp_path):
    for run_day in range(1, 29):
        workspace = make_workspace(tmp_path / str(run_day), [contract("acme")])
        write_yaml(workspace.partner_file, {"schedule": {"run_day": run_day}})
        check_day = int(tenant_check_cron(str(workspace.home)).split()[2])
        for first in (date(2027, m, 1) for m in range(1, 13)):
            check = first.replace(day=check_day)
            run = first.replace(day=run_day)
            if run <= check:
                run = Month.of(first).plus(1).first_day.replace(day=run_day)
            assert 3 <= (run - check).days <= 6, (run_day, check, run)
            # Its notices are for the month that run reconciles: the month before the run.
            assert notice_month(run_day, check) == Month.of(run).plus(-1)
