"""The `jobs` command: operate a jobs database and its OOPS reports.

    jobs [--config NAME|FILE] [--format table|json] COMMAND ...

Commands: ``db upgrade``, ``db verify``, ``db roles``, ``status``, ``list``, ``show``,
``retry``, ``suspend``, ``resume``, ``oops list``, ``oops show``,
``oops summary``, ``celery-worker``. A bad id, date or status is a one-line error and exit
status 2, never a traceback.
"""

__all__ = ["main"]

import argparse
import glob
import json
import os
import re
import sys
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.expr import And, Count, Desc, Not, Or, Select

from jobs import schema
from jobs.config import get_config, load, set_config
from jobs.database import UTCNow, clock, connect, database_now, get_store
from jobs.celery.dispatch import run_on_commit_if_celery
from jobs.errorlog import Redactor, read_report
from jobs.errors import InvalidTransition, JobsError
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job
from jobs.progress import draw
from jobs.registration import register_components

EXIT_ERROR = 2
FIELDS = ("id", "status", "attempt_count", "max_retries", "priority",
          "scheduled_start", "lease_expires", "date_created", "date_started",
          "date_finished")


# Statuses a runner may still take a job out of.
UNFINISHED = (JobStatus.WAITING, JobStatus.RUNNING, JobStatus.SUSPENDED)


class CommandError(JobsError):
    """A command cannot do what it was asked (bad id, date, transition)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandError(message)


def parse_status(text):
    names = []
    for name in text.split(","):
        try:
            names.append(JobStatus.items[name.strip().upper()])
        except KeyError:
            raise CommandError("Unknown status %r (one of: %s)." % (
                name, ", ".join(item.name.lower() for item in JobStatus.items)
            )) from None
    return names


def parse_date(text, now=None):
    """An ISO date/time (UTC unless it says) or an age like ``30d``/``2h``.

    :param now: what an age counts back from; default: the database's
        clock (the jobs' dates are the database's). OOPS reports are
        dated by the hosts that wrote them: those pass the host's.
    """
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
        if now is None:
            now = database_now(get_store())
        return now - timedelta(**{unit[match[2]]: int(match[1])})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            "Bad date %r: use YYYY-MM-DD[THH:MM[:SS]] or an age like 30d, "
            "12h." % text) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def parse_id(text):
    if not re.fullmatch(r"\d+", text):
        raise CommandError("Bad job id %r: ids are whole numbers." % text)
    return int(text)


def job_row(job):
    row = OrderedDict()
    for field in FIELDS:
        value = getattr(job, field)
        if field == "status":
            value = value.title
        elif isinstance(value, datetime):
            value = value.isoformat(" ", "seconds")
        row[field] = value
    return row


def output(rows, options, columns=None):
    """Print `rows` (list of dicts) as a table or as JSON."""
    if options.format == "json":
        print(json.dumps(rows, default=str, indent=1))
        return
    if not rows:
        print("(none)")
        return
    columns = columns or list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows))
              for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c])
                        for c in columns).rstrip())


def get_job(job_id):
    job = get_store().get(Job, job_id)
    if job is None:
        raise CommandError("No job %d." % job_id)
    return job


# --- commands ---------------------------------------------------------------


def job_types():
    """{section name: (condition, tables)} for the configured job sections
    whose source says which jobs are its own."""
    from zope.component import queryUtility
    from zope.dottedname.resolve import resolve
    config = get_config()
    types = OrderedDict()
    for name in config.job_section_names:
        try:
            source = queryUtility(resolve(
                config.job_section(name).source_interface))
        except (ImportError, AttributeError, ValueError, JobsError):
            continue
        if source is not None and hasattr(source, "jobCondition"):
            types[name] = source.jobCondition()
    return types


def type_condition(name):
    types = job_types()
    if name not in types:
        raise CommandError("Unknown job type %r (job sections: %s)." % (
            name, ", ".join(types) or "none"))
    return _seen_by(*types[name])


def _seen_by(condition, tables):
    """SQL: the job is one of those a source's `jobCondition` matches."""
    return Job.id.is_in(Select(Job.id, where=condition,
                               tables=[Job] + list(tables)))


def orphaned_condition(types=None):
    """SQL for unfinished jobs that no configured section's source sees —
    their context row was deleted, or their section removed: no runner
    will ever take them. None when no section's source can say which
    jobs are its own.

    :param types: `job_types()`, if the caller has it already.
    """
    if types is None:
        types = job_types()
    if not types:
        return None
    return And(Job.status.is_in(UNFINISHED),
               Not(Or(*[_seen_by(*type_) for type_ in types.values()])))


def cmd_db_upgrade(options):
    applied = schema.upgrade(get_store())
    print("Applied: %s" % (", ".join(
        "%s %04d_%s" % row for row in applied) or "nothing (up to date)"))


def cmd_db_verify(options):
    store = get_store()
    try:
        schema.check(store)
    except JobsError as e:
        print(str(e))
        return 1
    missing, unexpected = schema.differences(store)
    if missing or unexpected:
        print("The live schema differs from the migrations':")
        for line in missing:
            print("  missing:    %s" % line)
        for line in unexpected:
            print("  unexpected: %s" % line)
        return 1
    print("The schema is up to date.")


def cmd_db_roles(options):
    from jobs.roles import RoleError, apply_roles
    try:
        done = apply_roles(get_store(), get_config(), options.dry_run)
    except RoleError as e:
        raise CommandError(str(e)) from None
    if not done:
        print("No job section sets a dbuser: every section runs as the"
              " login role.")
    for role, sections, sql in done:
        print("%s role %s (sections: %s):" % (
            "Would set up" if options.dry_run else "Set up", role,
            ", ".join(sections)))
        for statement in sql:
            print("  %s;" % statement)


def cmd_status(options):
    store = get_store()
    counts = dict(store.execute(
        "SELECT status, count(*) FROM job GROUP BY status"))
    rows = [OrderedDict(status=item.title, jobs=counts.get(item.value, 0))
            for item in JobStatus.items]
    by_type = []
    types = job_types()
    for name, (condition, tables) in types.items():
        per_status = dict(store.using(Job, *tables).find(
            (Job.status, Count()), condition).group_by(Job.status))
        by_type.append(OrderedDict(
            [("type", name)] + [(item.title.lower(), per_status.get(item, 0))
                                for item in JobStatus.items]))
    oldest = store.find(Job.date_created, Job.id.is_in(Job.ready_jobs),
                        Job.status == JobStatus.WAITING).min(Job.date_created)
    lost = store.find(Job, Job.status == JobStatus.RUNNING,
                      Job.lease_expires < UTCNow()).count()
    failed = store.find(Job, Job.status == JobStatus.FAILED,
                        Job.date_finished > UTCNow(-3600)).count()
    age = (round((database_now(store) - oldest).total_seconds())
           if oldest else None)
    orphaned = orphaned_condition(types)
    summary = OrderedDict(
        oldest_ready=oldest.isoformat(" ", "seconds") if oldest else None,
        oldest_ready_age_seconds=age,
        running_with_expired_lease=lost, failed_last_hour=failed,
        orphaned=(store.find(Job, orphaned).count()
                  if orphaned is not None else None))
    if options.format == "json":
        print(json.dumps({"statuses": rows, "types": by_type, **summary},
                         indent=1))
        return
    output(rows, options)
    if by_type:
        print()
        output(by_type, options)
    for key, value in summary.items():
        print("%s: %s" % (key.replace("_", " "), value))


def cmd_list(options):
    conditions = []
    if options.status:
        conditions.append(Job.status.is_in(parse_status(options.status)))
    if options.since:
        conditions.append(Job.date_created >= parse_date(options.since))
    if options.type:
        conditions.append(type_condition(options.type))
    if options.orphaned:
        orphaned = orphaned_condition()
        if orphaned is None:
            raise CommandError("No job section's source says which jobs are"
                               " its own: cannot tell orphans.")
        conditions.append(orphaned)
    if options.limit < 1:
        raise CommandError("--limit must be at least 1.")
    jobs = get_store().find(Job, *conditions).order_by(Desc(Job.id))[
        :options.limit]
    output([job_row(job) for job in jobs], options,
           ["id", "status", "attempt_count", "priority", "date_created",
            "date_finished"])


def redactor():
    """Hides the configured secret names in what a command prints.

    The log and OOPS reports are redacted when written; this hides
    what was written before a name was configured, and progress status
    lines, which are stored as the job wrote them.
    """
    return Redactor(get_config().redact)


def cmd_show(options):
    job = get_job(parse_id(options.id))
    hide = redactor()
    row = job_row(job)
    row["log"] = hide.text(job.log)
    row["progress"] = (hide.data(json.loads(job.progress)) if job.progress
                       else None)
    row["oops_ids"] = [report["id"] for report in iter_reports(
        get_config().error_dir) if report.get("job_id") == job.id]
    if options.format == "json":
        print(json.dumps(row, default=str, indent=1))
        return
    for key, value in row.items():
        if key == "progress":
            print("progress:\n%s" % draw(
                json.dumps(value) if value is not None else None))
        elif key == "log":
            print("log:\n%s" % (value or "(none)"))
        else:
            print("%-16s %s" % (key + ":", value))


def _transition(options, verb, allowed, action):
    for text in options.ids:
        job_id = parse_id(text)
        job = get_job(job_id)
        if job.status not in allowed:
            raise CommandError(
                "Job %d is %s: only %s jobs can be %s." % (
                    job_id, job.status.title,
                    " or ".join(s.title for s in allowed), verb))
        try:
            action(job)
        except InvalidTransition as e:
            raise CommandError("Job %d: %s" % (job_id, e)) from None
        if job.status is JobStatus.WAITING:
            # Waiting again: a Celery-enabled section's job goes to
            # Celery when this commits.
            run_on_commit_if_celery(job_id)
        transaction.commit()
        print("Job %d is now %s." % (job_id, job.status.title))


def cmd_retry(options):
    from storm.expr import Update
    store = get_store()

    def retry(job):
        # Attempts are kept: an operator's retry is one more attempt.
        store.execute(Update(
            {Job.status: JobStatus.WAITING.value, Job.scheduled_start: None,
             Job.lease_expires: None},
            where=(Job.id == job.id) & (Job.status == JobStatus.FAILED),
            table=Job))
        store.invalidate(job)

    _transition(options, "retried", (JobStatus.FAILED,), retry)


def cmd_suspend(options):
    _transition(options, "suspended", (JobStatus.WAITING,),
                lambda job: job.suspend())


def cmd_cancel(options):
    for text in options.ids:
        job_id = parse_id(text)
        job = get_job(job_id)
        try:
            job.cancel()
        except InvalidTransition:
            raise CommandError("Job %d is %s: it cannot be cancelled." % (
                job_id, job.status.title)) from None
        transaction.commit()
        get_store().invalidate(job)
        if job.status is JobStatus.RUNNING:
            print("Job %d is running: cancel requested (its runner stops it)."
                  % job_id)
        else:
            print("Job %d is now %s." % (job_id, job.status.title))


def cmd_prune(options):
    statuses = parse_status(options.status)
    pending = [s.name for s in statuses if s in UNFINISHED]
    if pending:
        raise CommandError("Only finished jobs can be pruned, not %s." %
                           ", ".join(pending).lower())
    before = parse_date(options.older_than)
    store = get_store()
    condition = (Job.status.is_in(statuses)) & (Job.date_finished < before)
    if options.dry_run:
        print("Would delete %d jobs finished before %s." % (
            store.find(Job, condition).count(),
            before.isoformat(" ", "seconds")))
        return
    deleted = 0
    while True:
        # Batches keep each transaction (and its locks) short; context
        # rows go with their job (ON DELETE CASCADE).
        ids = list(store.find(Job.id, condition).order_by(Job.id)[
            :options.batch_size])
        if not ids:
            break
        store.find(Job, Job.id.is_in(ids)).remove()
        transaction.commit()
        deleted += len(ids)
    print("Deleted %d jobs finished before %s." % (
        deleted, before.isoformat(" ", "seconds")))


def cmd_resume(options):
    _transition(options, "resumed", (JobStatus.SUSPENDED,),
                lambda job: job.resume())


def iter_reports(error_dir, since=None):
    """Every OOPS report under `error_dir` (since `since`), oldest first."""
    reports = []
    for path in sorted(glob.glob(os.path.join(error_dir, "*", "OOPS-*"))):
        day = os.path.basename(os.path.dirname(path))
        if since is not None and day < since.strftime("%Y-%m-%d"):
            continue
        try:
            report = read_report(error_dir, os.path.basename(path))
        except Exception:
            continue  # a half-written or foreign file is not a report
        if since is not None and report.get("time") and (
                _aware(report["time"]) < since):
            continue
        reports.append(report)
    return sorted(reports, key=lambda r: _aware(r.get("time")) or datetime.min
                  .replace(tzinfo=timezone.utc))


def _aware(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def fingerprint(report):
    """Exception type + the frame where it was raised."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)',
                        report.get("tb_text") or "")
    where = "%s:%s in %s" % (os.path.basename(frames[-1][0]), frames[-1][1],
                             frames[-1][2]) if frames else "?"
    return "%s at %s" % (report.get("type"), where)


def reports_since(options):
    """``--since`` of the ``oops`` commands: reports are dated by the
    hosts that wrote them, so an age counts back from this host's clock."""
    if not options.since:
        return None
    return parse_date(options.since, now=clock.now())


def cmd_oops_list(options):
    since = reports_since(options)
    hide = redactor()
    rows = [OrderedDict(id=r["id"], time=str(_aware(r.get("time"))),
                        type=r.get("type"), job_id=r.get("job_id"),
                        value=hide.text(r.get("value") or "")[:60])
            for r in iter_reports(get_config().error_dir, since)]
    output(rows, options)


def cmd_oops_show(options):
    try:
        report = redactor().data(
            read_report(get_config().error_dir, options.id))
    except JobsError as e:
        raise CommandError(str(e)) from None
    if options.format == "json":
        print(json.dumps(report, default=str, indent=1))
        return
    for key in ("id", "time", "reporter", "type", "value", "job_id",
                "job_type", "operation", "req_vars", "locals"):
        print("%-10s %s" % (key + ":", report.get(key)))
    print("traceback:\n%s" % report.get("tb_text", ""))


def cmd_oops_summary(options):
    since = reports_since(options)
    groups = OrderedDict()
    for report in iter_reports(get_config().error_dir, since):
        key = fingerprint(report)
        group = groups.setdefault(key, OrderedDict(
            fingerprint=key, count=0, first_seen=None, last_seen=None,
            example=report["id"]))
        group["count"] += 1
        seen = str(_aware(report.get("time")))
        group["first_seen"] = group["first_seen"] or seen
        group["last_seen"] = seen
    rows = sorted(groups.values(), key=lambda g: -g["count"])
    output(rows, options)


def cmd_celery_worker(options):
    # Imported here: Celery is an optional dependency (the celery extra).
    try:
        from jobs.celery.task import worker_main
    except ImportError as e:
        raise CommandError("Celery is not installed (pip install"
                           " 'jobs[celery]'): %s" % e) from None
    queues = [queue for value in options.queues or ()
              for queue in value.split(",") if queue]
    worker_main(queues or [get_config().celery.default_queue],
                concurrency=options.concurrency, loglevel=options.loglevel,
                hostname=options.hostname, pool=options.pool)


# --- the parser -------------------------------------------------------------


def build_parser():
    parser = _Parser(prog="jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="config instance or file "
                        "(default: $JOBS_CONFIG or development)")
    parser.add_argument("--format", choices=("table", "json"),
                        default="table", help="listing format")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_Parser)

    db = commands.add_parser("db", help="install, upgrade or verify the schema")
    db_commands = db.add_subparsers(dest="db_command", required=True,
                                    parser_class=_Parser)
    db_commands.add_parser("upgrade", help="install or upgrade (idempotent)"
                           ).set_defaults(run=cmd_db_upgrade)
    db_commands.add_parser("verify", help="exit 1 if the schema is missing or"
                           " older than the code").set_defaults(run=cmd_db_verify)
    roles = db_commands.add_parser(
        "roles", help="create or narrow one PostgreSQL role per section"
        " dbuser, with only the privileges its job types declare")
    roles.add_argument("--dry-run", action="store_true",
                       help="print the statements, change nothing")
    roles.set_defaults(run=cmd_db_roles)

    commands.add_parser("status", help="counts, oldest ready job, lost,"
                        " recently failed and orphaned jobs"
                        ).set_defaults(run=cmd_status)

    listing = commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", help="e.g. failed or waiting,running")
    listing.add_argument("--since", help="created since a date or an age"
                         " (2026-11-01, 12h, 30d)")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--type", help="a job section, e.g. do_foo")
    listing.add_argument(
        "--orphaned", action="store_true",
        help="unfinished jobs no job section's source sees (their context"
             " row was deleted): no runner will take them")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="every field of one job, its log"
                               " tail and its OOPS ids")
    show.add_argument("id")
    show.set_defaults(run=cmd_show)

    prune = commands.add_parser(
        "prune", help="delete finished jobs (and their context rows)")
    prune.add_argument("--older-than", required=True,
                       help="an age (30d, 12h) or a date")
    prune.add_argument("--status", default="completed,failed,cancelled")
    prune.add_argument("--batch-size", type=int, default=1000)
    prune.add_argument("--dry-run", action="store_true")
    prune.set_defaults(run=cmd_prune)

    for name, run, text in (
            ("cancel", cmd_cancel, "WAITING/SUSPENDED -> CANCELLED; RUNNING:"
             " ask its runner to stop it"),
            ("retry", cmd_retry, "FAILED -> WAITING now (attempts kept)"),
            ("suspend", cmd_suspend, "WAITING -> SUSPENDED"),
            ("resume", cmd_resume, "SUSPENDED -> WAITING")):
        command = commands.add_parser(name, help=text)
        command.add_argument("ids", nargs="+", metavar="ID")
        command.set_defaults(run=run)

    worker = commands.add_parser(
        "celery-worker", help="run a Celery worker for the jobs sent to"
        " QUEUEs (late acks, prefetch 1, the queues' time limits)")
    worker.add_argument("-Q", "--queues", action="append", metavar="QUEUE",
                        help="a queue (repeatable, or comma-separated;"
                        " default: [celery] default_queue)")
    worker.add_argument("-c", "--concurrency", type=int, default=1,
                        help="worker processes (default 1)")
    worker.add_argument("-l", "--loglevel", default="INFO")
    worker.add_argument("-n", "--hostname", help="the worker's node name")
    worker.add_argument("-P", "--pool", help="Celery pool (default prefork)")
    worker.set_defaults(run=cmd_celery_worker)

    oops = commands.add_parser("oops", help="read OOPS reports")
    oops_commands = oops.add_subparsers(dest="oops_command", required=True,
                                        parser_class=_Parser)
    oops_list = oops_commands.add_parser("list", help="reports, oldest first")
    oops_list.add_argument("--since")
    oops_list.set_defaults(run=cmd_oops_list)
    oops_show = oops_commands.add_parser("show", help="one report")
    oops_show.add_argument("id")
    oops_show.set_defaults(run=cmd_oops_show)
    summary = oops_commands.add_parser(
        "summary", help="reports grouped by exception type and frame")
    summary.add_argument("--since")
    summary.set_defaults(run=cmd_oops_summary)
    return parser


def main(argv=None):
    """Run the `jobs` command; return its exit status."""
    try:
        options = build_parser().parse_args(argv)
        if options.config:
            set_config(load(options.config))
        register_components(get_config())
        connect(get_config().database_uri)
        code = options.run(options)
        transaction.abort()
        return code or 0
    except (CommandError, JobsError) as e:
        transaction.abort()
        print("jobs: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    except StormDatabaseError as e:
        transaction.abort()
        print("jobs: database error: %s" % " ".join(str(e).split()),
              file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as e:  # --help
        return e.code or 0


if __name__ == "__main__":
    sys.exit(main())
