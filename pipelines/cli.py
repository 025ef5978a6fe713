"""`python -m pipelines`: the command line of interfaces.md.

Exit codes: 0 success (true-ups found included), 1 the run failed, 2 bad arguments or bad
configuration. User errors print one message per problem, never a traceback. Heavy modules
are imported inside the commands so `--help` stays instant.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pipelines.core import timers
from pipelines.core.errors import ConfigError, LockBusy, UserError
from pipelines.core.i18n import Formats, english
from pipelines.core.months import Month
from pipelines.core.visible import visible
from pipelines.core.workspace import Workspace

log = logging.getLogger("polyrecon")
# Categories and statuses in the command line's English words (the keys stay in the CSV files).
WORDS = Formats("en")
STARTER = Path(__file__).resolve().parent / "starter"
DEMO_MARKER = ".polyrecon-demo"


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _begun(month: Month | None) -> Month | None:
    """The --month given, refused when it has not begun (jobs.check_month_begun)."""
    if month is not None:
        from pipelines.jobs.monthly import check_month_begun

        check_month_begun(month)
    return month


def _in_a_term(config, month: Month) -> Month:
    """The --month given, refused when it has not begun or lies before every term."""
    from pipelines.jobs.monthly import check_month_in_a_term

    check_month_in_a_term(config, _begun(month))
    return month


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS, metavar="DIR",
                        help="the workspace (default: $POLYRECON_HOME, else ./var)")
    parser = argparse.ArgumentParser(
        prog="python -m pipelines", parents=[common],
        description="Reconcile Poly Lens inventories against Poly+ Enterprise contracts.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def waits(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                         help="wait this long for another run on the workspace to finish "
                              "(default: give up at once)")
        return sub

    command("init", _init, "create a workspace with commented example configuration")
    demo = command("demo", _demo, "create a demo workspace with generated data and run the "
                                  "monthly job on it")
    demo.add_argument("--month", type=_month, help="the demo's latest month "
                                                   "(default: last month, UTC)")
    run = waits(command("run", _run, "the monthly job: take in the inbox, pull Lens, reconcile "
                                     "the month, write its files, render the reports"))
    run.add_argument("--month", type=_month, required=True, help="report month, YYYY-MM")
    run.add_argument("--customer", metavar="ID",
                     help="take in only this customer (the month is reconciled for all)")
    run.add_argument("--resend", action="store_true",
                     help="send the month's e-mails again, even those already sent")
    ingest = waits(command("ingest", _ingest, "only take in the inbox and pull the Lens API"))
    ingest.add_argument("--month", type=_month,
                        help="month a Lens API pull is attributed to (default: this month, UTC)")
    ingest.add_argument("--customer", metavar="ID", help="only this customer")
    reconcile = waits(command("reconcile", _reconcile,
                              "only reconcile (writes reconciliation.csv and rma.csv)"))
    reconcile.add_argument("--month", type=_month, required=True, help="report month, YYYY-MM")
    report = waits(command("report", _report, "only render the month's reports (HTML and PDF)"))
    report.add_argument("--month", type=_month, required=True, help="report month, YYYY-MM")
    report.add_argument("--customer", metavar="ID", help="only this customer's report")
    waits(command("rebuild", _rebuild, "re-create a damaged warehouse from archive/ (the old "
                                       "file is kept) and reconcile its months again"))
    catalog = waits(command("catalog", _catalog, "the models the catalog does not know, and "
                                                 "those it does not count: the list to extend "
                                                 "config/catalog.csv from"))
    catalog.add_argument("--csv", type=Path, metavar="FILE",
                         help="also write the lists to this CSV file")
    renew = waits(command("renew", _renew, "append the renewal proposal of the customer's "
                                           "last term as its next term in contracts.yaml"))
    renew.add_argument("--customer", metavar="ID", required=True, help="the customer to renew")
    review = command("review", _review, "what waits for approval before it goes to CSMs "
                                        "(delivery.review: required): the messages per "
                                        "customer, what changed, held files")
    review.add_argument("--month", type=_month, help="only this month (default: every month "
                                                     "with something waiting)")
    review.add_argument("--customer", metavar="ID", help="only this customer")
    approve = waits(command("approve", _approve, "send what waits for approval for a month "
                                                 "(exactly once), or put a held file back into "
                                                 "the inbox"))
    chosen = approve.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--month", type=_month, help="send the month's messages that wait, as "
                                                     "`review --month` lists them")
    chosen.add_argument("--file", type=Path, metavar="PATH",
                        help="a held file in quarantine/, as `status` lists it")
    approve.add_argument("--customer", metavar="ID",
                         help="with --month: only this customer's messages")
    command("status", _status, "what is in the warehouse: customers, months with data, "
                               "open alerts, quarantined files")
    tenants = waits(command("tenants", _tenants, "the Poly Lens tenants the credentials see "
                                                 "(id, name, region, devices), mapped to the "
                                                 "customers; exit 1 when a customer's tenant "
                                                 "is not visible"))
    tenants.add_argument("--notify", action="store_true",
                         help="also e-mail the partner each problem, once per problem for the "
                              "month the next monthly run reconciles (what the scheduled check "
                              "does)")
    return parser


# A write the disk refused: no space, over quota, or over the process's file-size limit.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# A workspace path this user cannot write, or a file where a folder belongs (and back).
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR,
                errno.EEXIST}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    # Files we create are the owner's only: the workspace holds CSM e-mail addresses.
    os.umask(0o077)
    workspace = Workspace.resolve(getattr(args, "home", None))
    before = timers.stage_seconds()
    try:
        code = args.handler(workspace, args) or 0
        spent = timers.summary(since=before)
        if spent:
            log.info("Time per stage: %s", spent)
        return code
    except UserError as error:
        print(str(error), file=sys.stderr)
        return error.exit_code
    except OSError as error:
        if error.errno in DISK_FULL:
            print(f"could not write {error.filename or workspace.home}: {error.strerror}; "
                  f"nothing was lost: free space on the disk and run the same command again",
                  file=sys.stderr)
            return 1
        if error.errno in NOT_WRITABLE and error.filename:
            print(f"could not write {visible(str(error.filename))}: {error.strerror}; nothing "
                  f"was lost: make it a folder this user may write to (or remove what is in "
                  f"its way) and run the same command again", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class _ToStderr(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a line is logged, not as it was when the handler
    was made: a second `main` in one process (a test, an embedding program) that redirected
    stderr gets its own lines."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_to_stderr() -> None:
    """Our progress lines on stderr; other libraries' chatter (GX, Airflow) stays quiet."""
    if not any(isinstance(h, _ToStderr) for h in log.handlers):
        handler = _ToStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _config(workspace: Workspace):
    from pipelines.core.config import load_config

    return load_config(workspace)


def _init(workspace: Workspace, args) -> int:
    for folder in workspace.folders():
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("partner.yaml", "contracts.yaml", "catalog.csv"):
        target = workspace.config_dir / name
        if target.exists():
            print(f"kept existing {workspace.relative(target)}")
        else:
            shutil.copyfile(STARTER / name, target)
            print(f"wrote {workspace.relative(target)}")
    print(f"workspace ready at {workspace.home}: edit config/contracts.yaml, then drop Lens "
          f"exports into inbox/<customer_id>/ and run `python -m pipelines run --month YYYY-MM`")
    return 0


def _previous_month() -> Month:
    return Month.of(datetime.now(UTC).date()).plus(-1)


def _demo(workspace: Workspace, args) -> int:
    from pipelines.demo.build import build_demo_workspace
    from pipelines.jobs.monthly import run_month

    if workspace.contracts_file.exists():
        raise ConfigError(f"{workspace.home} already has a contracts.yaml: the demo needs an "
                          f"empty folder (choose another --home)")
    demo = build_demo_workspace(workspace.home, str(args.month or _previous_month()),
                                review="required")
    (workspace.home / DEMO_MARKER).write_text("generated by `python -m pipelines demo`\n")
    config = _config(workspace)
    for month_text in demo.months:
        month = Month.parse(month_text)
        log.info("== monthly job for %s", month)
        # Reports and e-mails for the latest month only: earlier ones would look the same.
        monthly = run_month(config, month, publish=month_text == demo.months[-1])
    _demo_approval(config, month)
    if demo.late_uploads:
        # A corrected export after the report went out: the month again, and a correction;
        # and an export copied under the wrong month's name, which is held.
        for upload in demo.late_uploads:
            path = workspace.inbox / upload.path
            path.write_bytes(upload.data)
            os.utime(path, (upload.mtime, upload.mtime))
            log.info("== a file arrives: %s", workspace.relative(path))
        monthly = run_month(config, month)
        _print_intake(monthly.intake)
        _print_changes(monthly.changes)
        _demo_approval(config, month)
    _print_outcome(workspace, monthly.result, monthly.written)
    reports = workspace.home / "reports"
    print(f"\nReports for {demo.months[-1]}: {reports / demo.months[-1]}/<customer>.html and "
          f".pdf, portfolio.html and .pdf")
    print(f"E-mails (no SMTP server configured): {workspace.outbox / demo.months[-1]}/*.eml")
    print(f"Demo workspace: {workspace.home}")
    print(f"Reconciliations, {demo.months[0]} .. {demo.months[-1]}: "
          f"{reports}/<YYYY-MM>/reconciliation.csv and rma.csv")
    for renewal in sorted(reports.glob("*/renewal-*.yaml")):
        print(f"Renewal proposal: {renewal}")
    return _report_failures(monthly.reports)


def _demo_approval(config, month: Month) -> None:
    """What a person reviews and approves (`review`, `approve --month`), done by the demo."""
    from pipelines.jobs.review import approve_messages, describe_review, waiting_review

    print(f"\n== review (python -m pipelines review --month {month}):")
    print(describe_review(config, waiting_review(config, [month])))
    outcome = approve_messages(config, [month])
    print(f"== approved (python -m pipelines approve --month {month}): "
          + english("%(num)s message sent", "%(num)s messages sent", outcome.sent) + "\n")


def _run(workspace: Workspace, args) -> int:
    from pipelines.jobs.monthly import run_month

    config = _config(workspace)
    monthly = run_month(config, _in_a_term(config, args.month), args.customer,
                        resend=args.resend, wait=args.wait)
    _print_intake(monthly.intake)
    _print_outcome(workspace, monthly.result, monthly.written)
    _print_changes(monthly.changes)
    if monthly.preview:
        print(f"{args.month} is still in progress (UTC): its reports are a preview and nothing "
              f"was sent or queued for it; run it for real from {args.month.plus(1).first_day}")
    return max(_pull_failures(monthly.intake), _report_failures(monthly.reports),
               _mail_failures(monthly.mail))


def _print_changes(changes) -> None:
    """Every month whose result the run changed, the run's own and those it replayed."""
    months = sorted({c.month for c in changes})
    if changes:
        print(f"Changed by this run ({', '.join(months)}):")
    for change in changes:
        topic = "RMA" if change.topic == "rma" else WORDS.category(change.topic)
        print(f"  {change.month} {change.customer_id} {topic}: {change.before} → {change.after}")


def _mail_failures(outcome) -> int:
    """Exit 1 when messages could not go out: they stay queued for the next run."""
    print(f"E-mail: {outcome.queued} new, {outcome.sent} sent, {outcome.still_queued} still "
          f"queued, {outcome.rejected} rejected"
          + (f", {outcome.waiting} waiting for approval (`review`, then `approve --month`)"
             if outcome.waiting else "")
          + (f", {outcome.withdrawn} waiting ones withdrawn (composed again otherwise)"
             if outcome.withdrawn else ""))
    return 1 if outcome.still_queued else 0


def _report(workspace: Workspace, args) -> int:
    from pipelines.jobs.monthly import render_portfolio_job, report

    config = _config(workspace)
    outcome = report(config, _in_a_term(config, args.month), args.customer, wait=args.wait)
    if args.customer:  # the portfolio shows every customer: it must not go stale
        outcome.written += render_portfolio_job(config, args.month, wait=args.wait)
    for path in outcome.written:
        print(f"wrote {path}")
    return _report_failures(outcome)


def _report_failures(outcome) -> int:
    """Exit 1 when a report could not be rendered (the others were)."""
    for customer_id, problem in outcome.failed:
        print(f"report for {customer_id} failed: {problem}", file=sys.stderr)
    return 1 if outcome.failed else 0


def _ingest(workspace: Workspace, args) -> int:
    from pipelines.jobs.monthly import ingest, send_rejection_notices

    config = _config(workspace)
    month = _begun(args.month) or Month.of(datetime.now(UTC).date())
    intake = ingest(config, month, args.customer, wait=args.wait)
    _print_intake(intake)
    code = _pull_failures(intake)
    if any(item.outcome in ("quarantined", "held") for item in intake.files):
        # The partner's staff hear of a rejected file now, not with the month's run; an
        # `ingest --customer` (one of several writers side by side on DuckLake) or one that
        # finds another run holding the workspace leaves it to the next run: the ledger knows
        # it unsent.
        if args.customer:
            print("Notices of the files above: the month's run sends them")
            return code
        try:
            notices = send_rejection_notices(config, intake.files, month, wait=args.wait)
        except LockBusy as busy:
            print(f"Notices of the files above: not sent yet, the next run sends them ({busy})")
            return code
        if any(vars(notices).values()):  # else no partner contact to tell
            code = max(code, _mail_failures(notices))
    return code


def _pull_failures(intake) -> int:
    """Exit 1 when a Lens pull failed: the rest of the run is done, but a month is missing."""
    failed = intake.failed_pulls
    if failed:
        print(english("%(num)s Lens API pull failed; its customer keeps the snapshots stored "
                      "before", "%(num)s Lens API pulls failed; their customers keep the "
                      "snapshots stored before", len(failed)), file=sys.stderr)
    return 1 if failed else 0


def _reconcile(workspace: Workspace, args) -> int:
    from pipelines.jobs.monthly import reconcile

    config = _config(workspace)
    result, written = reconcile(config, _in_a_term(config, args.month), wait=args.wait)
    _print_outcome(workspace, result, written)
    return 0


def _print_intake(intake) -> None:
    if intake.files:
        tally = Counter(r.outcome for r in intake.files)
        print("Inbox: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items())))
    else:
        print("Inbox: no new files")
    for result in intake.files:
        if result.outcome in ("quarantined", "held"):
            print(f"  {result.outcome} {result.path}: {result.detail}")
        elif not result.month_from_name:
            print(f"  loaded {result.path}: {result.detail}")
    held = sum(r.outcome == "held" for r in intake.files)
    if held:
        print(english("Held: %(num)s file waits in quarantine/ until renamed as its reason "
                      "says, or approved (`approve --file`); `status` lists what waits",
                      "Held: %(num)s files wait in quarantine/ until renamed as their reason "
                      "says, or approved (`approve --file`); `status` lists what waits", held))
    for pull in intake.pulls:
        print(f"Lens API {pull.customer_id} (tenant {pull.tenant_id}): {pull.detail}")


def _print_outcome(workspace: Workspace, result, written) -> None:
    statuses = Counter(row.status for row in result.rows)
    customers = len({row.customer_id for row in result.rows})
    print(f"{result.month}: "
          + english("%(num)s customer reconciled", "%(num)s customers reconciled", customers)
          + "; " + ", ".join(f"{n} {WORDS.status(status)}"
                             for status, n in sorted(statuses.items())))
    for row in result.rows:
        if row.status == "TRUE_UP":
            print(f"  {WORDS.status(row.status)} {row.customer_id} {WORDS.category(row.category)}: "
                  + english("+%(num)s device", "+%(num)s devices", row.true_up_devices)
                  + f", {row.prorated_amount} {row.currency}, new baseline {row.new_baseline}")
    for row in result.rma:
        if row.status != "OK":
            print(f"  RMA {WORDS.status(row.status)} {row.customer_id}: {row.rma_rate_pct} % ("
                  + english("%(rmas)s of %(num)s headset", "%(rmas)s of %(num)s headsets",
                            row.headset_base, rmas=row.headset_rmas) + ")")
    for path in written:
        print(f"wrote {path}")


def _rebuild(workspace: Workspace, args) -> int:
    from pipelines.jobs.rebuild import rebuild

    outcome = rebuild(_config(workspace), wait=args.wait)
    print(f"Rebuilt {workspace.relative(workspace.warehouse)} from archive/: "
          + english("%(num)s file", "%(num)s files", outcome.files) + " and "
          + english("%(num)s Lens API pull", "%(num)s Lens API pulls", outcome.pulls)
          + ", in the order they were received")
    if outcome.kept_as:
        print(f"The old warehouse is kept as {workspace.relative(outcome.kept_as)}")
    print(f"E-mail: {outcome.mail}")
    print(f"Reconciled again: {', '.join(outcome.months) or 'no month had results'}")
    for path in outcome.written:
        print(f"wrote {path}")
    return 0


def _catalog(workspace: Workspace, args) -> int:
    from pipelines.jobs.monthly import review_catalog
    from pipelines.reconciliation.catalog_review import describe, write_csv

    models = review_catalog(_config(workspace), wait=args.wait)
    print(describe(models))
    if args.csv:
        write_csv(args.csv, models)
        print(f"wrote {args.csv}")
    return 0


def _status(workspace: Workspace, args) -> int:
    from pipelines.jobs.status import describe

    print(describe(_config(workspace)))
    return 0


def _tenants(workspace: Workspace, args) -> int:
    from pipelines.jobs.tenants import describe, notice_check, notify
    from pipelines.lens_api.tenants import map_tenants

    config = _config(workspace)
    tenant_map = map_tenants(config)
    print(describe(config, tenant_map))
    code = 1 if tenant_map.hidden else 0
    if args.notify:
        check = notice_check(config, tenant_map, datetime.now(UTC).date())
        print(f"Notices to the partner for {check['month']}, each problem once: "
              + english("%(num)s problem", "%(num)s problems", len(check["problems"])))
        code = max(code, _mail_failures(notify(config, check, wait=args.wait)))
    return code


def _review(workspace: Workspace, args) -> int:
    from pipelines.jobs.review import describe_review, review_required, waiting_review

    config = _config(workspace)
    months = [args.month] if args.month else None
    print(describe_review(config, waiting_review(config, months, args.customer)))
    if not review_required(config):
        print("delivery.review is off in partner.yaml: runs send at once, nothing new waits")
    return 0


def _approve(workspace: Workspace, args) -> int:
    from pipelines.jobs.approve import approve_file

    if args.month:
        from pipelines.jobs.review import approve_messages

        outcome = approve_messages(_config(workspace), [args.month], args.customer,
                                   wait=args.wait)
        if not outcome.queued:
            print(f"Nothing waits for approval for {args.month}"
                  + (f" and customer {args.customer}" if args.customer else "")
                  + ": nothing was sent")
        return _mail_failures(outcome)
    if args.customer:
        raise ConfigError("approve --customer goes with --month: a held file names its "
                          "customer itself")
    done = approve_file(_config(workspace), args.file, wait=args.wait)
    print(f"approved {done.held}: put back as {done.put_back}; the next run takes it for "
          f"{done.month} without the check that held it")
    return 0


def _renew(workspace: Workspace, args) -> int:
    from pipelines.jobs.renew import renew

    done = renew(_config(workspace), args.customer, wait=args.wait)
    term = done.term.term
    print(f"contracts.yaml: customer '{done.customer_id}' renewed: term {term.start}..{term.end} "
          f"added from {workspace.relative(done.proposal)}")
    for name, category in done.term.categories.items():
        print(f"  {WORDS.category(name)}: "
              + english("%(num)s ordered device", "%(num)s ordered devices", category.ordered)
              + f", {category.unit_price_per_year} per device and year")
    print(f"The file before is kept as {workspace.relative(done.kept)}. Months of the earlier "
          f"term stay reconciled against it.")
    return 0
