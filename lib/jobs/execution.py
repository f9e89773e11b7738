"""`Execution`: run one attempt in this process and record its outcome.

What every runner shares once it holds a claimed job: run the job's code
with its log captured, ask the outcome policy (`jobs.outcome.decide`) what
that ended in, and record it — roll back or keep the job's work, file the
OOPS report *before* FAILED is committed (a runner killed in between
leaves a report for a job that runs again, never a FAILED job without
one), write the fenced outcome (`jobs.model.claims.record`), notify the
job, commit. The process runner's parent records the outcomes of children
that died or ran too long through the same `record_outcome`.
"""

__all__ = ["Execution", "job_str"]

import logging
import sys
from collections import Counter

import transaction
from storm.exceptions import DisconnectionError
from storm.store import Store

from jobs.attempt import Attempt
from jobs.database import Savepoint, dialect, forget_dead_objects, get_store
from jobs.database.stormext import forget_object
from jobs.errors import StaleJob
from jobs.heartbeat import SideConnection
from jobs.logtail import LogTail
from jobs.metrics.tally import tally_for
from jobs.model import claims
from jobs.sections import DEFAULT_SETTINGS, error_reporter_for
from jobs.outcome import (
    CANCEL,
    COMPLETE,
    STALE,
    ErrorPolicy,
    decide,
    decide_lost,
)

# What a job's code may raise that is the job's, not the runner's: every
# exception but a KeyboardInterrupt (a real Ctrl-C stops the runner).
JOB_ERRORS = (Exception, SystemExit, GeneratorExit)


def job_str(job):
    """``Class (ID n)``: how log lines name a job. (A job's repr usually
    shows its status, which would load its row: a query a job.)"""
    return "%s (ID %d)" % (type(job).__name__, job.job_id)


class Execution:
    """Runs attempts in this process and records their outcomes.

    :param logger: where the job lines go.
    :param error_reporter: the `jobs.errorlog.ErrorReporter` (default:
        one from the current configuration).
    :param group_commit: outcomes are not committed job by job: each job
        runs inside a SAVEPOINT and `commit_group` commits the group.
    :param settings: the section's settings (log tail level and size).
    :param requeue_error_types: see `jobs.outcome.ErrorPolicy`.
    :param keep_jobs: keep the jobs in `completed_jobs` and
        `incomplete_jobs` (the seed's API); counts are kept always, in
        `completed` and `incomplete` ({job class name: count}).
    """

    def __init__(self, logger, error_reporter=None, group_commit=False,
                 settings=None, requeue_error_types=(), keep_jobs=False):
        settings = settings or DEFAULT_SETTINGS
        self.logger = logger
        self.error_reporter = error_reporter or error_reporter_for(
            getattr(settings, "name", None))
        self.group_commit = group_commit
        self.keep_jobs = keep_jobs
        self.requeue_error_types = tuple(requeue_error_types)
        # What the running job logs; attached around a whole batch.
        self.tail = LogTail(settings.log_level, settings.log_tail_chars)
        self.completed = Counter()
        self.incomplete = Counter()
        self.completed_jobs = []
        self.incomplete_jobs = []
        self.oops_ids = []
        # Job ids given back to the queue by a requeue outcome.
        self.requeued = []
        # Group commit: (job_id, attempt, log, progress) of COMPLETED
        # attempts that `commit_group` records, and their attempts.
        self.deferred = []
        self.heartbeat = None
        self.tally = tally_for(getattr(settings, "name", None))

    def make_attempt(self, claimed, lease_seconds):
        """The `Attempt` of a `jobs.model.claims.Claimed`."""
        attempt = Attempt(claimed.job_id, claimed.attempt,
                          claimed.max_retries, lease_seconds,
                          claimed.cancel_requested, claimed.lost)
        attempt.job = claimed.job
        return attempt

    def runJob(self, job):
        """See `IJobRunner`: run `job`, claimed by this process
        (``job.attempt`` set), and record its outcome."""
        return self.runAttempt(job, job.attempt)

    def runJobHandleError(self, job):
        """`runJob`, returning the OOPS report filed, or None (the API of
        Launchpad's runner)."""
        filed = len(self.oops_ids)
        self.runJob(job)
        if len(self.oops_ids) > filed:
            return self._last_report
        return None

    def runAttempt(self, job, attempt, before_commit=None):
        """Run `attempt` of `job` and record its outcome; return it.

        :param before_commit: called in the outcome's transaction just
            before it commits (the next claim goes with it).
        :raises storm.exceptions.DisconnectionError: the database went
            away: the attempt is lost (its work rolled back with the
            connection), as after a crash; its lease hands the job on.
        """
        job.attempt = attempt
        attempt.job = job
        if attempt.progress_writer is None:
            store = get_store()
            if dialect(store).concurrent_writes:
                attempt.progress_writer = SideConnection.of(
                    store).write_progress
        try:
            outcome = self._before_start(job, attempt)
            if outcome is None:
                outcome = self._run(job, attempt)
            self.record_outcome(job, attempt, outcome,
                                before_commit=before_commit)
            return outcome
        finally:
            job.attempt = None

    def _before_start(self, job, attempt):
        """The outcome of an attempt that must not run, or None."""
        store = get_store()
        if not dialect(store).concurrent_writes and not attempt.row_locked:
            # SQLite: renew the lease in the job's own transaction, which
            # holds the write lock from now on: no one can take the job
            # until its outcome is committed.
            found = claims.renew(store, [(attempt.job_id, attempt.number)],
                                 attempt.lease_seconds)
            _, current, cancel = found.get(attempt.job_id, (0, 0, 0))
            if not current:
                return STALE.because(StaleJob(
                    "Job %d changed under this runner since attempt %d was"
                    " claimed." % (attempt.job_id, attempt.number)))
            attempt.cancel_requested |= cancel
        if attempt.lost:
            lost = decide_lost(attempt.number - 1, attempt.max_retries)
            self.logger.info(
                "%s was left RUNNING by a lost runner (attempt %d)%s.",
                job_str(job), attempt.number - 1,
                "" if lost else "; running it again")
            if lost is not None:
                return lost
        if attempt.cancel_requested:
            return CANCEL.because(None)
        return None

    def _run(self, job, attempt):
        """Run the job's code; return the outcome the policy decides."""
        self.logger.info("Running %s, attempt %d", job_str(job),
                         attempt.number)
        savepoint = Savepoint(get_store()) if self.group_commit else None
        attempt.savepoint = savepoint
        tail = self.tail
        error = None
        attempt.start()
        with tail, attempt.running():
            tail.start()
            try:
                job.run()
                # The job's pending ORM changes are its work: a failure to
                # write them is the job's failure.
                get_store().flush()
            except DisconnectionError:
                raise
            except JOB_ERRORS as e:
                error = e
            finally:
                tail.stop()
                text = tail.text()
                if text is not None:
                    text = self.error_reporter.redactor.text(text)
                attempt.log_tail = text
        return self.decide(job, attempt, error)

    def decide(self, job, attempt, error):
        """The policy's outcome of `attempt` of `job` ending with `error`
        (None: run() returned)."""
        policy = ErrorPolicy()
        if error is not None:
            try:
                policy = ErrorPolicy.of(job, self.requeue_error_types)
            except JOB_ERRORS:
                # The job's policy attributes are its own code, and broke
                # too: its error is then reported as "anything else".
                pass
        return decide(error, attempt.number, attempt.max_retries, policy)

    def record_outcome(self, job, attempt, outcome, before_commit=None):
        """Record `outcome` of `attempt` of `job` (see the module's
        docstring); commit unless in a group."""
        store = get_store()
        savepoint = attempt.savepoint
        if outcome.keep_work:
            if savepoint is not None:
                savepoint.release()
        elif savepoint is not None:
            savepoint.rollback()
        else:
            # Before touching the row: a failed SQL statement poisons the
            # transaction, and the job's work must go anyway.
            transaction.abort()
        if outcome.status is None:
            return self._stale(job, attempt)
        report = None
        if outcome.oops:
            report = self.file_oops(job, outcome.error, attempt.log_tail)
        if outcome is COMPLETE and self.group_commit:
            self.deferred.append((attempt.job_id, attempt.number,
                                  attempt.log_tail,
                                  attempt.outcome_progress()))
        elif not claims.record(
                store, attempt.job_id, attempt.number, outcome.status,
                retry_delay=outcome.retry_delay, log=attempt.log_tail,
                progress=attempt.outcome_progress(),
                uncount=not attempt.started):
            return self._stale(job, attempt)
        attempt.recorded = True
        if self.heartbeat is not None:
            self.heartbeat.forget([attempt])
        self._log_outcome(job, attempt, outcome, report)
        if outcome.notify is not None:
            self._notify(job, getattr(job, outcome.notify),
                         report if outcome.oops else outcome.error)
        if not self.group_commit:
            if before_commit is not None:
                before_commit()
            transaction.commit()
        self._count(job, attempt, outcome)

    def _stale(self, job, attempt):
        """The attempt was fenced: drop its outcome and its work."""
        if self.group_commit:
            if attempt.savepoint is not None:
                attempt.savepoint.rollback()
        else:
            transaction.abort()
        attempt.recorded = True
        if self.heartbeat is not None:
            self.heartbeat.forget([attempt])
        self.logger.warning(
            "%s: attempt %d was fenced (another runner took the job over"
            " after its lease expired); its outcome and its database"
            " changes were dropped.", job_str(job), attempt.number)
        self._count(job, attempt, STALE)

    def _log_outcome(self, job, attempt, outcome, report):
        error = outcome.error
        if outcome is COMPLETE:
            self.logger.debug("Completed %s.", job_str(job))
        elif outcome.name == "retry":
            self.logger.info("Scheduling retry due to %s: %s.",
                             type(error).__name__, error)
        elif outcome.name == "user-error":
            self.logger.info("%s failed with user error %r.",
                             job_str(job), error)
        elif outcome.name == "suspend":
            self.logger.debug("Job suspended itself")
        elif outcome.name == "cancel":
            self.logger.info("Cancelled %s%s.", job_str(job),
                             "" if attempt.started else
                             " before it started")
        elif outcome.name == "requeue":
            self.logger.info("Giving %s back to the queue after %s.",
                             job_str(job), type(error).__name__)
            self.requeued.append(attempt.job_id)

    def _count(self, job, attempt, outcome):
        """Count the outcome (an endless worker keeps counts, not jobs;
        the metrics' `tally` too)."""
        completed = outcome is COMPLETE
        name = type(job).__name__
        (self.completed if completed else self.incomplete)[name] += 1
        self.tally.outcome(name, outcome.name, attempt.seconds(),
                           attempt.lost)
        if self.keep_jobs:
            (self.completed_jobs if completed
             else self.incomplete_jobs).append(job)

    def commit_group(self):
        """Record the group's deferred outcomes in one statement, commit.

        The runner locked the group's rows, so no outcome can be refused;
        if one is all the same, the group's work is rolled back and its
        jobs run again once their leases expire (at least once, as after
        a crash).
        """
        forget_dead_objects(get_store())
        deferred, self.deferred = self.deferred, []
        if deferred and claims.record_completed(
                get_store(), deferred) != len(deferred):
            transaction.abort()
            self.logger.warning(
                "The outcomes of a group of %d jobs could not be recorded"
                " (a row changed under this runner): the group was rolled"
                " back; its jobs run again when their leases expire.",
                len(deferred))
            return
        transaction.commit()

    def file_oops(self, job, error, log_tail=None):
        """Write the OOPS report of `job`'s failure with `error`; return
        the report."""
        exc_info = (type(error), error, error.__traceback__)
        report = self.error_reporter.raising(
            exc_info, job.getOopsVars(), job_id=job.job_id,
            job_type=type(job).__name__,
            operation=job.getOperationDescription(), log_tail=log_tail)
        self._record_oops(report)
        return report

    _last_report = None

    def _record_oops(self, report):
        self._last_report = report
        if report.get("id"):
            self.logger.info("Job resulted in OOPS: %s", report["id"])
            self.oops_ids.append(report["id"])

    def _notify(self, job, notify, argument):
        """Call `notify` in a savepoint of the outcome's transaction; if
        it fails, file an OOPS for that failure (its writes undone)."""
        savepoint = Savepoint(get_store())
        try:
            notify(argument)
            savepoint.release()
        except JOB_ERRORS:
            savepoint.rollback()
            report = self.error_reporter.raising(
                sys.exc_info(), job.getOopsVars(), job_id=job.job_id,
                job_type=type(job).__name__,
                operation=job.getOperationDescription())
            self._record_oops(report)

    def forget(self, job):
        """Let Storm drop a finished job's objects now.

        Until the transaction ends Storm's cache keeps every loaded object,
        and every flush re-serializes each cached JSON value to detect
        changes: in a group of N jobs that is N^2 work.
        """
        store = get_store()
        for obj in (getattr(job, "context", None),
                    job.__dict__.get("_job_row")):
            if obj is not None and Store.of(obj) is store:
                forget_object(store, obj)
        if not self.group_commit:
            forget_dead_objects(store)

    def log_summary(self, logger=None):
        """Log ``Ran n <Class> jobs.`` and ``n <Class> jobs did not
        complete.`` (or ``No jobs to run.``)."""
        logger = logger or self.logger
        if not self.completed and not self.incomplete:
            logger.info("No jobs to run.")
        for name, count in sorted(self.completed.items()):
            logger.info("Ran %d %s jobs.", count, name)
        for name, count in sorted(self.incomplete.items()):
            logger.info("%d %s jobs did not complete.", count, name)
