"""``jobs workers``: the runners in the ``worker`` table, live and lost,
and what each holds (`jobs.presence`); ``jobs cancel --worker ID`` asks
one to stop."""

__all__ = ["COLUMNS", "add_commands", "cancel_workers", "jobs_text", "worker_rows"]

from collections import OrderedDict

import transaction

from jobs.cli.formatting import output, parse_id
from jobs.config import get_config
from jobs.database import database_now, get_store
from jobs.errors import CommandError
from jobs.interfaces.job import JobStatus
from jobs.model import workers
from jobs.model.job import Job

COLUMNS = ["id", "state", "kind", "host", "pid", "sections", "started",
           "last_beat", "jobs"]


def _held_state(job_id, attempt, found):
    """What became of `attempt` of job `job_id`: ``running`` (still its
    attempt), ``taken over`` (a later attempt of another runner's),
    ``pruned``, or the status it ended in."""
    status, current = found.get(job_id, (None, None))
    if status is None:
        return "pruned"
    if current > attempt:
        return "taken over by attempt %d (%s)" % (current,
                                                   status.title.lower())
    return status.title.lower()


def _claims(store):
    """``{"<host>:<pid>": [(job id, attempt)]}``: the RUNNING jobs by the
    runner process their claim names (``job.claimed_by``)."""
    claims = {}
    for job_id, attempt, holder in store.find(
            (Job.id, Job.attempt_count, Job.claimed_by),
            Job.status == JobStatus.RUNNING, Job.claimed_by != None):  # noqa
        claims.setdefault(holder.split("/", 1)[0], []).append(
            (job_id, attempt))
    return claims


def worker_rows(config, store):
    """One row (an ordered dict) per runner: what ``jobs workers``
    prints. A runner is ``lost`` when its last beat is older than
    ``[workers] lost_after_beats`` of its beats (by the database's
    clock), ``stopping`` when it was asked to stop, else ``live``. Its
    jobs are those of its last beat, and the RUNNING jobs whose claim
    names its process (on SQLite, where the in-process runner has no
    lease heartbeat, only those)."""
    settings = config.workers
    now = database_now(store)
    found = workers.find(store)
    claims = _claims(store)
    held = {}
    for row in found:
        pairs = held[row.id] = list(row.held)
        pairs += [pair for pair in claims.get("%s:%d" % (row.host, row.pid),
                                              ()) if pair not in pairs]
        pairs.sort()
    ids = {job_id for pairs in held.values() for job_id, _ in pairs}
    jobs = {job_id: (status, attempt) for job_id, status, attempt in (
        store.find((Job.id, Job.status, Job.attempt_count),
                   Job.id.is_in(ids)) if ids else ())}
    rows = []
    for row in found:
        age = (now - row.last_beat).total_seconds()
        rows.append(OrderedDict(
            id=row.id,
            state=workers.state(row, now, settings.lost_after_beats), kind=row.kind, host=row.host,
            pid=row.pid, sections=row.sections,
            started=row.started.strftime("%Y-%m-%d %H:%M:%S"),
            last_beat="%d s ago" % max(0, round(age)),
            jobs=[OrderedDict(job=job_id, attempt=attempt,
                              now=_held_state(job_id, attempt, jobs))
                  for job_id, attempt in held[row.id]]))
    return rows


def jobs_text(held):
    return ", ".join("%d#%d %s" % (one["job"], one["attempt"], one["now"])
                     for one in held) or "-"


def cmd_workers(options):
    rows = worker_rows(get_config(), get_store())
    if options.live or options.lost:
        wanted = {"lost"} if options.lost else {"live", "stopping"}
        rows = [row for row in rows if row["state"] in wanted]
    if options.format == "json":
        output(rows, options)
        return
    output([dict(row, jobs=jobs_text(row["jobs"])) for row in rows],
           options, COLUMNS)


def cancel_workers(ids):
    """``jobs cancel --worker ID``: ask each runner to stop gracefully (at
    its next beat: a worker as after SIGTERM, a cron run once its running
    job has finished).

    :raises CommandError: for a bad id, a runner that is not in the table
        or is lost (it cannot stop; its jobs are taken over when their
        leases expire).
    """
    config, store = get_config(), get_store()
    for text in ids:
        worker_id = parse_id(text, "worker")
        rows = {row["id"]: row for row in worker_rows(config, store)}
        row = rows.get(worker_id)
        if row is None:
            raise CommandError("No worker %d (jobs workers lists them)."
                               % worker_id)
        if row["state"] == "lost":
            raise CommandError(
                "Worker %d is lost (its last beat was %s): it cannot stop;"
                " other runners take its jobs over when their leases"
                " expire." % (worker_id, row["last_beat"]))
        workers.request_stop(store, worker_id)
        transaction.commit()
        print("Worker %d: stop requested; it stops at its next beat."
              % worker_id)


def add_commands(commands, parser_class):
    """Add ``workers`` to `commands` (argparse)."""
    listing = commands.add_parser(
        "workers", help="the runners (cron runs, workers, Celery worker"
        " processes), live and lost, and the jobs each holds")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--live", action="store_true",
                       help="only live runners (and stopping ones)")
    which.add_argument("--lost", action="store_true",
                       help="only lost runners")
    listing.set_defaults(run=cmd_workers)
