"""The job contract: the shared job row and runnable jobs."""

__all__ = [
    "IJob",
    "IJobCreatedEvent",
    "IJobDispatcher",
    "IJobSource",
    "IJobsUnblockedEvent",
    "IRunnableJob",
    "JobStatus",
    "PENDING_STATUSES",
]

from lazr.enum import DBEnumeratedType, DBItem
from zope.interface import Attribute, Interface

# The sources' contract, in a module of its own; named here too, where
# job authors have always found it.
from jobs.interfaces.source import (
    IJobCreatedEvent,
    IJobDispatcher,
    IJobSource,
    IJobsUnblockedEvent,
)


class JobStatus(DBEnumeratedType):
    """The lifecycle status of a job; the value is what the database stores."""

    WAITING = DBItem(0, """
        Waiting

        The job is waiting to be run.
        """)

    RUNNING = DBItem(1, """
        Running

        A runner holds the job's lease and is running it.
        """)

    COMPLETED = DBItem(2, """
        Completed

        The job ran to completion.
        """)

    FAILED = DBItem(3, """
        Failed

        The job failed; its own database changes were rolled back.
        """)

    SUSPENDED = DBItem(4, """
        Suspended

        The job is waiting to be resumed and will not run until then.
        """)

    CANCELLED = DBItem(5, """
        Cancelled

        An operator cancelled the job, or a job it depends on failed or
        was cancelled; it will not run again (unless that dependency is
        retried).
        """)

    BLOCKED = DBItem(6, """
        Blocked

        The job waits for the jobs it depends on to complete.
        """)


PENDING_STATUSES = frozenset(
    (JobStatus.WAITING, JobStatus.RUNNING, JobStatus.SUSPENDED,
     JobStatus.BLOCKED))


class IJob(Interface):
    """One row of the shared ``job`` table: the state every job type has.

    Created by a job type's ``create()`` in the application's transaction;
    moved through its lifecycle (WAITING, RUNNING, COMPLETED, FAILED,
    SUSPENDED, CANCELLED). Every transition outside the lifecycle table
    raises `InvalidTransition`. Each transition is one UPDATE conditional
    on the status it moves from; from RUNNING, the outcome methods
    (complete, fail, queue, suspend) also take the `attempt` number the
    caller started (`start`'s return value) and then match only that
    attempt, raising `StaleJob` when another runner took the job over.
    Runners do not use these methods: they claim jobs and record outcomes
    with fenced statements of their own (`jobs.model.claims`).
    """

    id = Attribute("The job's id (int), unique across all job types.")
    job_id = Attribute("The same as `id`; the name log lines and runners use.")
    status = Attribute("The job's current `JobStatus` item.")
    attempt_count = Attribute(
        "How many times the job has been started (int); every `start()` "
        "adds one, and an attempt whose runner died still counts.")
    max_retries = Attribute(
        "How many retries a retry-class error may cause (int). A retry is "
        "allowed while `attempt_count <= max_retries`.")
    scheduled_start = Attribute(
        "Aware UTC datetime before which the job must not run; None means "
        "as soon as possible.")
    lease_expires = Attribute(
        "Aware UTC datetime after which another runner may take the job; "
        "None when no lease is held.")
    date_created = Attribute("Aware UTC datetime at which the job was created.")
    date_started = Attribute(
        "Aware UTC datetime at which the current or last attempt started; "
        "None if the job never started.")
    date_finished = Attribute(
        "Aware UTC datetime at which the last attempt ended (completed, "
        "failed or was queued for retry); None while running or never run.")
    log = Attribute(
        "Text: the tail of the log of the job's last run, or None.")
    base_job_type = Attribute(
        "Int type tag for jobs with no context table of their own, or None.")
    base_json_data = Attribute(
        "JSON-compatible payload (dict) for jobs with no context table of "
        "their own, or None.")
    progress = Attribute(
        "JSON text: the progress tree of the last attempt, or None.")
    priority = Attribute(
        "Int: among ready jobs, higher runs first (default 0).")
    kind = Attribute(
        "Text naming the job's type, set at creation: "
        "``<context table>:<job_type value>`` (e.g. ``foo_job:0``), "
        "``job:<base_job_type>`` for a job with no context table, "
        "``task:<dotted path>`` for a function job; None for rows made "
        "otherwise.")
    result = Attribute(
        "What the job's ``run()`` returned, once COMPLETED (JSON: a dict, "
        "list, text, number, bool), or None.")
    waiting_on = Attribute(
        "Int: how many of the jobs this one depends on have not completed "
        "yet (it is BLOCKED while that is above 0).")
    has_dependents = Attribute(
        "Bool: some job depends on this one (its outcome settles them).")
    run_if_dependency_fails = Attribute(
        "Bool: run this job even when a job it depends on FAILED or was "
        "CANCELLED (``on_dependency_failure='run'``); by default it is "
        "CANCELLED then.")
    cancelled_by = Attribute(
        "The id of the dependency whose failure cancelled this job, or "
        "None; retrying that dependency makes this job pending again.")
    concurrency_key = Attribute(
        "Text, or None: at most the section's ``max_running_per_key`` "
        "RUNNING jobs share a key.")
    unique_key = Attribute(
        "Text, or None: at most one pending job (WAITING, RUNNING, "
        "SUSPENDED, BLOCKED) has a given (`kind`, `unique_key`).")
    cancel_requested = Attribute(
        "True when an operator asked to cancel the job while it was "
        "RUNNING. Job code running under a runner reads the attempt's "
        "copy, which the lease heartbeat refreshes (see "
        "`IRunnableJob.check_cancelled`).")
    is_pending = Attribute(
        "True when the status is WAITING, RUNNING, SUSPENDED or BLOCKED.")
    is_runnable = Attribute(
        "True when the status is WAITING and `scheduled_start` is None or "
        "past, by the database clock. Ignores the lease.")

    def acquireLease(duration=60):
        """Take the job's lease for `duration` seconds, atomically.

        One conditional UPDATE (on PostgreSQL a ``FOR UPDATE SKIP LOCKED``
        claim) sets ``lease_expires = now + duration`` only while the job
        is ready: WAITING, unleased or lease expired, due; or RUNNING with
        an expired lease (its runner died). Of two connections racing for
        one job exactly one wins. Times come from the database clock.

        :param duration: seconds (int or float); a negative value gives an
            already-expired lease.
        :raises LeaseHeld: when another runner holds the lease or the job
            is not ready.
        Leaves the transaction open: the caller commits to publish the lease.

        Launchpad's API, kept for its callers: no runner uses it (runners
        claim jobs with one fenced statement, `IJobSource.claimReady`).
        """

    def getTimeout():
        """Return the seconds (float, >= 0) left on the lease; 0 if none."""

    def start(manage_transaction=False):
        """Move to RUNNING: a new attempt; return its number (int).

        Adds one to `attempt_count`, sets `date_started` to now and clears
        `date_finished`. Allowed from WAITING, and from RUNNING when the
        lease has expired (a reclaimed orphan).

        :raises InvalidTransition: from any other status.
        :raises StaleJob: when the row changed since it was read.
        Commits when `manage_transaction` is true.
        """

    def complete(manage_transaction=False, attempt=None):
        """Move from RUNNING to COMPLETED and set `date_finished`.

        :raises InvalidTransition: from any status but RUNNING.
        :raises StaleJob: when another runner reclaimed the job since this
            attempt started.
        Commits the job's own changes with the new status (one commit)
        when `manage_transaction` is true.
        """

    def fail(manage_transaction=False, attempt=None):
        """Move from RUNNING to FAILED and set `date_finished`.

        :raises InvalidTransition: from any status but RUNNING.
        :raises StaleJob: when another runner reclaimed the job since this
            attempt started.
        When `manage_transaction` is true, aborts first (throwing away the
        job's own changes, and any failed SQL state) before touching the
        row, then commits.
        """

    def queue(manage_transaction=False, abort_transaction=False,
              attempt=None):
        """Move to WAITING (a retry, or a re-run of a finished job).

        Clears the lease and sets `date_finished`. Allowed from every
        status; from WAITING only the lease and dates change.

        :raises StaleJob: from RUNNING, when another runner reclaimed the
            job since this attempt started.
        When `manage_transaction` is true: aborts first if
        `abort_transaction`, then commits with the new status.
        """

    def suspend(manage_transaction=False, attempt=None):
        """Move from WAITING or RUNNING to SUSPENDED.

        :raises InvalidTransition: from any other status.
        :raises StaleJob: from RUNNING, when another runner reclaimed the
            job since this attempt started.
        Commits (keeping the job's own changes) when `manage_transaction`.
        """

    def reportProgress(current, total, status_line=None, group=()):
        """Record progress: `current` of `total` at the node `group`.

        `group` is a tuple of names (``()``: the job as a whole); parents
        sum their children unless set. Written at once in a transaction of
        its own on PostgreSQL (visible while the job runs, kept if the job
        fails); on SQLite with the job's outcome. Does not touch the
        caller's transaction.
        """

    def cancel():
        """Cancel the job.

        WAITING or SUSPENDED: CANCELLED at once. RUNNING: sets
        `cancel_requested`; the runner stops the job and records
        CANCELLED (no OOPS).

        :raises InvalidTransition: from COMPLETED, FAILED or CANCELLED.
        Leaves the transaction to the caller.
        """

    def resume():
        """Move from SUSPENDED to WAITING and clear the lease.

        :raises InvalidTransition: from any status but SUSPENDED.
        Never manages the transaction.
        """


class IRunnableJob(IJob):
    """A job of a concrete type, as a runner sees it.

    Wraps an `IJob` row (``.job``) and forwards every `IJob` name to it;
    adds the work (`run`) and the policy the runner applies to its outcome.
    Created by a job source (``create``, ``iterReady``, ``get``).
    """

    job = Attribute("The `IJob` row this job wraps.")
    attempt = Attribute(
        "The `jobs.attempt.Attempt` running this job in this process, or "
        "None when it is not running here. Its ``number`` is the attempt "
        "number and ``key`` the pair ``(job_id, number)``: unique to this "
        "attempt and the same whoever runs it, an idempotency key for "
        "side effects outside the database.")
    user_error_types = Attribute(
        "Tuple of exception classes that are the user's fault: the job "
        "FAILS, `notifyUserError` is called, no OOPS is filed.")
    retry_error_types = Attribute(
        "Tuple of exception classes meaning 'try again later': the job is "
        "queued for `retry_delay` while attempts remain.")
    retry_delay = Attribute(
        "`datetime.timedelta` to wait before a retry (default 10 minutes).")
    lease_duration = Attribute(
        "`datetime.timedelta`: the length of a runner's lease on the job "
        "(default 5 minutes).")
    task_queue = Attribute(
        "The name (str) of the Celery queue `celeryRunOnCommit` sends the "
        "job to; None (the default) means its section's ``task_queue``, "
        "else ``[celery] default_queue``.")

    def celeryRunOnCommit():
        """Send the job to Celery once the current transaction commits.

        Flushes the store first, so the message carries the job's id.
        Registers an after-commit hook on the current transaction (one
        per transaction, however many jobs): when the commit succeeds, it
        sends ``jobs.run_job(job_id)`` to the job's `task_queue` with that
        queue's time limits; after an abort or a failed commit it sends
        nothing. A broker that cannot be reached never fails the commit:
        the hook logs a WARNING naming the jobs, which stay WAITING in
        the database until ``run_jobs.py --celery-sweep`` sends them.

        Jobs whose section sets ``celery_dispatch: true`` call this when
        they are created.

        :raises ConfigError: when ``[celery]`` or a Celery-enabled
            section's ``source_interface`` is malformed (at once, not at
            commit).
        Does not commit; flushes.
        """

    def check_cancelled():
        """Raise if the job should stop now; a long job calls it often.

        :raises JobCancelled: an operator asked to cancel the job: the
            job ends CANCELLED, without an OOPS, its own database changes
            rolled back.
        :raises StaleJob: the attempt lost its lease to another runner:
            nothing it does will be kept.
        Does nothing when the job is not running under a runner. Touches
        no database (the lease heartbeat reads the flags).
        """

    def run():
        """Do the job's work.

        Returns nothing. Raises to signal another outcome: a
        `user_error_types` error, a `retry_error_types` error,
        `SuspendJobException`, or anything else (FAILED with an OOPS).
        Leaves the transaction to the runner.
        """

    def getOopsVars():
        """Return a list of (name, value) pairs to put in OOPS reports.

        The default is ``[("job_id", id)]``; job types extend it.
        """

    def getOperationDescription():
        """Return a phrase that completes 'error while ...' (str)."""

    def notifyOops(report):
        """Tell someone that the job failed with the OOPS `report` (a dict).

        The default logs the OOPS id at INFO. Must not commit.
        """

    def notifyUserError(error):
        """Tell the user that the job failed with the user error `error`.

        The default logs the error at INFO. Must not commit.
        """
