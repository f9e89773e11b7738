"""The `jobs` commands that change jobs: ``retry``, ``cancel``,
``suspend`` and ``resume`` (job ids, or every job a filter matches; see
`jobs.operations`), and ``prune`` (finished jobs, their context rows,
their OOPS index rows and this host's report files)."""

__all__ = ["add_commands"]

import transaction

from jobs.cli.formatting import (
    parse_date,
    parse_id,
    parse_status,
    progress_bar,
)
from jobs.cli.workers import cancel_workers
from jobs.config import get_config
from jobs.database import get_store
from jobs.errors import CommandError
from jobs.interfaces.job import PENDING_STATUSES
from jobs.jobfilter import JobFilter
from jobs.model import oopsreport
from jobs.model.job import Job
from jobs.oopsindex import files_of_jobs, remove_files
from jobs.operations import ACTIONS, apply, apply_to_filter, count



def job_filter(options):
    """The `JobFilter` of a command's filter options."""
    sections = ()
    if options.type:
        config = get_config()
        if options.type not in config.job_section_names:
            raise CommandError("Unknown job type %r (job sections: %s)." % (
                options.type, ", ".join(config.job_section_names) or "none"))
        sections = (options.type,)
    return JobFilter(
        sections=sections,
        statuses=tuple(parse_status(options.status)) if options.status
        else (),
        since=parse_date(options.since) if options.since else None,
        until=parse_date(options.until) if options.until else None,
        fingerprint=options.fingerprint)


def cmd_action(options):
    action = ACTIONS[options.action]
    chosen = job_filter(options)
    if getattr(options, "worker", None):
        cancel_workers(options.worker)
        if not options.ids and chosen.empty:
            return
    if options.ids and not chosen.empty:
        raise CommandError("Give job ids or a filter, not both.")
    if options.ids:
        return _each(action, [parse_id(text) for text in options.ids])
    if chosen.empty:
        raise CommandError(
            "Which jobs? Give job ids, or a filter: --type, --status,"
            " --since, --until, --fingerprint%s." % (
                " (or --worker ID)" if action.name == "cancel" else ""))
    store, config = get_store(), get_config()
    total = count(store, config, action, chosen)
    if options.dry_run:
        print("Would %s %d jobs." % (action.name, total))
        return
    with progress_bar(total, action.done.capitalize()) as bar:
        moved, requested = apply_to_filter(store, config, action, chosen,
                                           progress=bar.update)
    print("%d jobs %s." % (moved, action.done) + (
        " %d running jobs: cancel requested (their runners stop them)."
        % requested if requested else ""))


def _each(action, ids):
    """`action` on each id in turn, with a line each; the first job it
    cannot act on is an error (the ones before it are done)."""
    store = get_store()
    for job_id in ids:
        job = store.get(Job, job_id)
        if job is None:
            raise CommandError("No job %d." % job_id)
        status = job.status
        if status not in action.acts_on:
            if action.name == "cancel":
                raise CommandError("Job %d is %s: it cannot be cancelled."
                                   % (job_id, status.title))
            raise CommandError("Job %d is %s: only %s jobs can be %s." % (
                job_id, status.title,
                " or ".join(s.title for s in action.sources), action.done))
        moved, requested = apply(store, action, [job_id])
        transaction.commit()
        if requested:
            print("Job %d is running: cancel requested (its runner stops"
                  " it)." % job_id)
        elif moved:
            print("Job %d is now %s." % (job_id, action.target.title))
        else:
            print("Job %d changed meanwhile: left as it is." % job_id)


def cmd_prune(options):
    statuses = parse_status(options.status)
    pending = [s.name for s in statuses if s in PENDING_STATUSES]
    if pending:
        raise CommandError("Only finished jobs can be pruned, not %s." %
                           ", ".join(pending).lower())
    if options.batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    before = parse_date(options.older_than)
    store, config = get_store(), get_config()
    condition = (Job.status.is_in(statuses)) & (Job.date_finished < before)
    total = store.find(Job, condition).count()
    when = before.isoformat(" ", "seconds")
    if options.dry_run:
        print("Would delete %d jobs finished before %s." % (total, when))
        return
    deleted = files = elsewhere = 0
    with progress_bar(total, "Pruned") as bar:
        while True:
            # Batches keep each transaction (and its locks) short; context
            # rows go with their job (ON DELETE CASCADE), index rows here,
            # this host's report files once the batch is committed.
            ids = list(store.find(Job.id, condition).order_by(Job.id)[
                :options.batch_size])
            if not ids:
                break
            report_ids, paths, remote = files_of_jobs(store, config, ids)
            oopsreport.delete_rows(store, report_ids)
            store.find(Job, Job.id.is_in(ids)).remove()
            transaction.commit()
            files += remove_files(paths)
            elsewhere += remote
            deleted += len(ids)
            bar.update(len(ids))
    print("Deleted %d jobs finished before %s, and %d OOPS report files"
          " of theirs." % (deleted, when, files))
    if elsewhere:
        print("%d of their OOPS reports are on other hosts: `jobs oops"
              " prune` there deletes old report files." % elsewhere)


def add_filter_options(command):
    """The options of a `JobFilter` (bulk actions)."""
    command.add_argument("--type", metavar="SECTION",
                         help="jobs of a job section, e.g. do_foo")
    command.add_argument("--status", help="e.g. failed or waiting,suspended")
    command.add_argument("--since", help="created since a date or an age")
    command.add_argument("--until", help="created before a date or an age")
    command.add_argument("--fingerprint",
                         help="jobs with an OOPS report of this fingerprint"
                         " (jobs oops summary lists them)")
    command.add_argument("--dry-run", action="store_true",
                         help="say how many jobs, change nothing")


def add_commands(commands, parser_class):
    """Add the commands that change jobs to `commands` (argparse)."""
    prune = commands.add_parser(
        "prune", help="delete finished jobs (their context rows, OOPS index"
        " rows and this host's OOPS files)")
    prune.add_argument("--older-than", required=True,
                       help="an age (30d, 12h) or a date")
    prune.add_argument("--status", default="completed,failed,cancelled")
    prune.add_argument("--batch-size", type=int, default=1000)
    prune.add_argument("--dry-run", action="store_true")
    prune.set_defaults(run=cmd_prune)

    for name, text in (
            ("cancel", "WAITING/SUSPENDED/BLOCKED -> CANCELLED (and the jobs"
             " waiting for it); RUNNING: ask its"
             " runner to stop it"),
            ("retry", "FAILED -> WAITING now (attempts kept; the jobs its"
             " failure cancelled are pending again)"),
            ("suspend", "WAITING -> SUSPENDED"),
            ("resume", "SUSPENDED -> WAITING")):
        command = commands.add_parser(
            name, help=text + "; job IDs, or every job a filter matches")
        command.add_argument("ids", nargs="*", metavar="ID")
        add_filter_options(command)
        if name == "cancel":
            command.add_argument(
                "--worker", action="append", metavar="ID",
                help="ask runner ID (jobs workers) to stop gracefully: a"
                " worker as after SIGTERM, a cron run once its running job"
                " has finished")
        command.set_defaults(run=cmd_action, action=name)
