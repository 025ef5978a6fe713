"""What the Airflow DAGs need from the pipeline, as plain functions of plain values (no Airflow
import here): the DAG files stay thin and pass only keys, months and paths between tasks."""
from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta

import yaml

from pipelines.core.config import DEFAULT_RUN_DAY, RUN_DAYS
from pipelines.core.i18n import english
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace


def _partner_yaml(home: str) -> dict:
    """partner.yaml as plain YAML, or {}: read at DAG parse time, where a mistake in it must
    not fail the DAG (the run's own configuration check names it)."""
    try:
        data = yaml.safe_load((Workspace.resolve(home).partner_file).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _run_day(home: str) -> int:
    """`schedule.run_day`; config.py's default where it is missing or not a valid day."""
    run_day = (_partner_yaml(home).get("schedule") or {}).get("run_day", DEFAULT_RUN_DAY)
    if not isinstance(run_day, int) or run_day not in RUN_DAYS:
        run_day = DEFAULT_RUN_DAY
    return run_day


def monthly_cron(home: str) -> str:
    """06:00 UTC on `schedule.run_day` of each month."""
    return f"0 6 {_run_day(home)} * *"


# How many days before run day the tenant check e-mails the partner, at least: time to ask a
# customer to accept a Lens grant.
CHECK_DAYS_BEFORE = 3


def tenant_check_cron(home: str) -> str:
    """06:00 UTC CHECK_DAYS_BEFORE days before `schedule.run_day`; for a run day too early in
    the month for that, on day run_day + 25 of the month before (a day every month has): three
    to six days ahead."""
    run_day = _run_day(home)
    day = run_day - CHECK_DAYS_BEFORE if run_day > CHECK_DAYS_BEFORE else run_day + 25
    return f"0 6 {day} * *"


def drop_folder_inbox(home: str) -> str | None:
    """partner.yaml's `drop_folder.inbox` (an s3:// prefix), or None for the local inbox."""
    inbox = (_partner_yaml(home).get("drop_folder") or {}).get("inbox")
    if not isinstance(inbox, str) or not inbox.startswith("s3://"):
        return None
    return inbox if inbox.endswith("/") else inbox + "/"


def alert_recipients(home: str) -> list[str]:
    """Who hears of a failed run: the partner's contact address and every partner contact."""
    found = []
    contact = (_partner_yaml(home).get("partner") or {}).get("contact_email")
    if contact:
        found.append(contact)
    try:
        contracts = yaml.safe_load(Workspace.resolve(home).contracts_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        contracts = {}
    for customer in contracts.get("customers") or []:
        for address in (customer or {}).get("partner_contacts") or []:
            if address not in found:
                found.append(address)
    return found


# A scheduled run that starts this long after its slot (the DAG was paused, the scheduler was
# down) renders but sends nothing: its e-mails would surprise; the run says so and fails.
LATE_AFTER = timedelta(days=1)


def plan_run(config, requested: str | None, customer_id: str | None, run_after: datetime,
             scheduled: bool, now: datetime) -> dict:
    """What a monthly DAG run does, checked before anything runs (a bad `month` or `customer`
    is a ConfigError: the task fails at once). `notes` are what the run's last task reports as
    failures: a late scheduled run that sent nothing, months the schedule missed."""
    from pipelines.jobs.monthly import (
        check_customer,
        check_month_begun,
        check_month_in_a_term,
        unpublished_months,
    )

    month = Month.parse(report_month(requested, run_after))
    check_month_begun(month, now.date())
    check_month_in_a_term(config, month)
    check_customer(config, customer_id)
    late = scheduled and now - run_after > LATE_AFTER
    notes = []
    if late:
        notes.append(f"this scheduled run for {month} started {(now - run_after).days} days "
                     f"after its time (the DAG was paused or the scheduler was down): its "
                     f"reports are rendered but nothing was e-mailed; trigger the DAG with "
                     f'{{"month": "{month}"}} to send them')
    if scheduled:
        for missed in unpublished_months(config, month):
            notes.append(f"{missed} was never published (a scheduled run was missed): trigger "
                         f'the DAG with {{"month": "{missed}"}}')
    return {"month": str(month), "customer": customer_id, "send": not late, "notes": notes}


def report_month(requested: str | None, run_after: datetime | date) -> str:
    """The month a run reconciles: the `month` param, else the month before the run."""
    if requested:
        return str(Month.parse(requested))
    day = run_after.date() if isinstance(run_after, datetime) else run_after
    return str(Month.of(day).plus(-1))


def as_records(items) -> list[dict]:
    """Dataclass results as plain dicts (what XCom carries)."""
    return [asdict(item) for item in items]


def with_smtp(config, host: str, port: int | None, starttls: bool, sender: str | None):
    """`config` sending through the given server (an Airflow connection's), not partner.yaml's."""
    from pipelines.core.config import Config, SmtpSettings

    sender = sender or (config.partner.smtp.sender if config.partner.smtp
                        else config.partner.partner.contact_email) or "polyrecon@localhost"
    smtp = SmtpSettings(host=host, port=port or 587, starttls=starttls, **{"from": sender})
    return Config(config.workspace, config.partner.model_copy(update={"smtp": smtp}),
                  config.contracts, config.catalog)


def run_problems(notes: list[str], pulls: list[dict]) -> list[str]:
    """What fails a monthly run at its end (`check`): the plan's notes and each failed pull."""
    return list(notes) + [f"the Lens pull for {p['customer_id']} failed: {p['detail']}"
                          for p in pulls or [] if p.get("outcome") == "failed"]


def refreshed_record(refreshed) -> dict:
    """`refresh_stale_months`' outcome as XCom carries it: the months reconciled again and the
    files written."""
    return {"months": [str(m) for m in refreshed.months],
            "written": [str(path) for path in refreshed.written]}


def review_request(config, months: list[str], customer_id: str | None,
                   problems: list[str] = ()) -> dict | None:
    """With `delivery.review: required`, what a run's approval asks about: the messages waiting
    for the months it touched, as `python -m pipelines review` describes them, after the run's
    problems. None when the review is off or nothing waits: no approval is asked."""
    from pipelines.jobs.review import describe_review, review_required, waiting_review

    if not review_required(config):
        return None
    touched = sorted({Month.parse(m) for m in months})
    review = waiting_review(config, touched, customer_id)
    if not review.messages:
        return None
    shown = ", ".join(str(m) for m in touched)
    problems_first = "".join(f"**Problem:** {problem}\n\n" for problem in problems)
    return {"months": [str(m) for m in touched], "customer": customer_id,
            "waiting": review.fingerprint,
            "subject": english("Send the %(num)s e-mail waiting for %(shown)s",
                               "Send the %(num)s e-mails waiting for %(shown)s",
                               len(review.messages), shown=shown)
                       + (f" ({customer_id})" if customer_id else "") + "?",
            "body": f"{problems_first}```text\n{describe_review(config, review)}\n```\n"}


def send_approved_messages(config, request: dict, answer: dict,
                           login: tuple[str, str] | None = None, wait: float = 0) -> dict:
    """After a person approved `request` (review_request's): what waits for its months sent,
    once — only when it is what they were shown. Another run may have composed a month again
    while the approval waited (the upload DAG, a CLI run): then nothing is sent, and a
    ConfigError says to review again (clear the task `review` and what follows it). Raises
    RuntimeError when some could not go out: they stay queued, and the task's retry delivers
    them."""
    from pipelines.jobs.review import approve_messages

    months = [Month.parse(m) for m in request["months"]]
    outcome = approve_messages(config, months, customer_id=request["customer"], login=login,
                               shown=request["waiting"], wait=wait)
    if outcome.still_queued:
        raise RuntimeError(english(
            "%(num)s approved e-mail could not be sent; it stays queued and goes out with the "
            "task's retry or the next run", "%(num)s approved e-mails could not be sent; they "
            "stay queued and go out with the task's retry or the next run",
            outcome.still_queued))
    approver = (answer or {}).get("responded_by_user") or {}
    return {**asdict(outcome), "approved_by": approver.get("name")}
