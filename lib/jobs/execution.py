"""`Execution`: run one attempt in this process, and record its outcome.

What every runner shares once it holds a claimed job: check that the job
may start (its lease still this runner's, its start on record, no cancel
asked for, its last runner not lost beyond its attempts), run the job's
code with its log captured and its transaction watched
(`jobs.guard.TransactionGuard`), ask the outcome policy
(`jobs.outcome.decide`) what that ended in, and record it
(`jobs.recording.OutcomeRecorder`). The process runner's parent records
the outcomes of children that died or ran too long through the same
`record_outcome`.
"""

__all__ = ["Execution", "RUNNING_LINE", "job_str"]

import logging
from collections import Counter

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.exceptions import DisconnectionError
from storm.store import Store

from jobs.attempt import Attempt
from jobs.claiming import load_jobs
from jobs.database import Savepoint, dialect, forget_dead_objects, get_store
from jobs.database.store import forget_store
from jobs.database.stormext import flush_pending, forget_object
from jobs.errors import StaleJob, TransactionMisuse
from jobs.guard import TransactionGuard, guard_open, job_raised
from jobs.heartbeat import SideConnection
from jobs.log import RepeatedLine, emits
from jobs.logtail import LogTail
from jobs.model.jsondata import result_text
from jobs.model.limits import Limits
from jobs.metrics.tally import tally_for
from jobs.model import claims, lean, records
from jobs.outcome import (
    CANCEL,
    DEFAULT_POLICY,
    FAIL,
    STALE,
    ErrorPolicy,
    decide,
    decide_lost,
)
from jobs.recording import JOB_ERRORS, OutcomeRecorder, job_str
from jobs.sections import DEFAULT_SETTINGS, error_reporter_for

# The runner's line before each job (`jobs.log.RepeatedLine`).
RUNNING_LINE = "Running %s, attempt %d"


class Execution(OutcomeRecorder):
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
        # The ids of the last `KEEP_OOPS_IDS` OOPS reports filed, and how
        # many were filed: a worker that runs for months keeps counters,
        # not a record per job.
        self.oops_ids = []
        self.oops_filed = 0
        # Job ids given back to the queue by a requeue outcome.
        self.requeued = []
        # Group commit: the COMPLETED outcomes (`jobs.recording.Deferred`)
        # that `commit_group` records.
        self.deferred = []
        # Ids of jobs whose dependencies this runner's outcomes settled
        # (a runner empties it): they are ready now.
        self.made_ready = []
        self.tally = tally_for(getattr(settings, "name", None))
        # The section's concurrency and rate limits, which its claims keep.
        self.claim_limits = Limits.of(settings)
        self.heartbeat = None
        self.listen()

    def listen(self):
        """Learn whether the per-job lines (INFO, DEBUG) would be written
        anywhere but the log tail: when they would not, they are never
        built (`jobs.log.emits`). Called again by a run, once its
        handlers are in place."""
        self.says_info = emits(self.logger, logging.INFO, (self.tail,))
        self.running_line = RepeatedLine(self.logger, logging.INFO,
                                         RUNNING_LINE)
        self.says_debug = emits(self.logger, logging.DEBUG, (self.tail,))

    def make_attempt(self, claimed, lease_seconds):
        """The `Attempt` of a `jobs.model.claims.Claimed`."""
        attempt = Attempt(claimed.job_id, claimed.attempt,
                          claimed.max_retries, lease_seconds,
                          claimed.cancel_requested, claimed.lost,
                          claimed.started)
        attempt.job = claimed.job
        attempt.lost_runner = claimed.lost_runner
        return attempt

    def runJob(self, job):
        """See `IJobRunner`: run `job`, claimed by this process
        (``job.attempt`` set), and record its outcome."""
        return self.runAttempt(job, job.attempt)

    def runJobHandleError(self, job):
        """`runJob`, returning the OOPS report filed, or None (the API of
        Launchpad's runner)."""
        filed = self.oops_filed
        self.runJob(job)
        if self.oops_filed > filed:
            return self._last_report
        return None

    def runAttempt(self, job, attempt, before_commit=None):
        """Run `attempt` of `job` and record its outcome; return it.

        :param before_commit: called in the outcome's transaction just
            before it commits (the next claim goes with it); what it
            returns, if not None, is called once that commit has
            succeeded.
        :raises storm.exceptions.DisconnectionError: the database went
            away: the attempt is lost (its work rolled back with the
            connection), as after a crash; its lease hands the job on.
            (A connection that another runner ended because this one had
            lost the job — it froze past its lease — is not that: the
            attempt's outcome is dropped, as fenced.)
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
            # (A job that closed its store is recorded through a copy
            # loaded again: see `_misused`.)
            self.record_outcome(attempt.job, attempt, outcome,
                                before_commit=before_commit)
            return outcome
        except DisconnectionError:
            if not self._taken_over(attempt):
                raise
            transaction.abort()  # Storm reconnects at the next statement
            self._stale(job, attempt)
            return STALE
        finally:
            job.attempt = None

    def _taken_over(self, attempt):
        """Whether `attempt`'s job belongs to another runner now (asked
        through the side connection; False when that fails too: the
        database is gone)."""
        if attempt.fenced:
            return True
        store = get_store()
        if not dialect(store).concurrent_writes:
            return False
        try:
            found = SideConnection.of(store).run(
                records.renew, [(attempt.job_id, attempt.number)])
        except StormDatabaseError:
            return False
        return not found.get(attempt.job_id, (0, 0, 0))[1]

    # Whether the database takes concurrent writers (PostgreSQL), once a
    # runner knows (None: asked of the store's dialect at each use).
    concurrent_writes = None

    def _before_start(self, job, attempt):
        """The outcome of an attempt that must not run, or None."""
        concurrent = self.concurrent_writes
        if concurrent is None:
            concurrent = dialect(get_store()).concurrent_writes
        if not attempt.row_locked and not concurrent:
            # SQLite: renew the lease in the job's own transaction, which
            # holds the write lock from now on: no one can take the job
            # until its outcome is committed.
            found = records.renew(get_store(),
                                  [(attempt.job_id, attempt.number)],
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
            self._end_lost_session(attempt)
        if attempt.cancel_requested:
            return CANCEL.because(None)
        if not attempt.start_marked:
            # The start must be on record before the job runs: from then on
            # the attempt counts, even if this runner dies.
            attempt.start_marked = claims.mark_started(
                get_store(), attempt.job_id, attempt.number)
            if not attempt.start_marked:
                return STALE.because(StaleJob(
                    "Job %d: another runner took attempt %d over before it"
                    " started." % (attempt.job_id, attempt.number)))
            if not self.group_commit:
                transaction.commit()
        return None

    def _end_lost_session(self, attempt):
        """A lost runner that froze in this job still holds its locks:
        end its session (through the side connection: a refusal must not
        poison the job's transaction)."""
        store = get_store()
        if not attempt.lost_runner or not dialect(store).roles:
            return
        try:
            ended = SideConnection.of(store).run(
                records.end_lost_session, attempt.lost_runner)
        except StormDatabaseError as e:
            self.logger.info("Could not end the lost runner's session %s:"
                             " %s", attempt.lost_runner,
                             " ".join(str(e).split()))
            return
        if ended:
            self.logger.info(
                "Ended the database session of the lost runner %s (it was"
                " still in a transaction).", attempt.lost_runner)

    def _run(self, job, attempt):
        """Run the job's code; return the outcome the policy decides."""
        if self.says_info:
            self.running_line(job_str(job, attempt.job_id),
                              attempt.number)
        store = self.batch_store
        if store is None:
            store = get_store()
        savepoint = Savepoint(store) if self.group_commit else None
        attempt.savepoint = savepoint
        guard = TransactionGuard(store)
        limits = self.limits(attempt)
        tail = self.tail
        error = None
        tail.begin()
        running = attempt.begin()
        try:
            if limits is None:
                value = self._call(job, guard, store)
            else:
                with limits:
                    value = self._call(job, guard, store)
            attempt.result = result_text(job, value)
        except DisconnectionError:
            raise
        except BaseException as e:
            if not job_raised(e):
                raise
            error = e
        finally:
            attempt.end(running)
            text = tail.end()
            if text is not None:
                text = self.error_reporter.redactor.text(text)
            attempt.log_tail = text
        misuse = guard.misuse()
        if misuse is not None:
            return self._misused(job, attempt, misuse, error)
        return self.decide(job, attempt, error)

    # The store a runner's group runs in, looked up once for the group
    # (None: looked up for each job). A job that closes it ends that.
    batch_store = None

    @staticmethod
    def _call(job, guard, store):
        """The job's code, and its pending ORM changes written: they are
        its work, so a failure to write them is the job's failure."""
        value = job.run()
        if guard.intact():
            lean.settle(getattr(job, "context", None))
            flush_pending(store)
        return value

    def limits(self, attempt):
        """A context manager around the job's code (a process runner's
        child enforces its time and memory limits there), or None."""
        return None

    def _misused(self, job, attempt, misuse, error):
        """The job ended (or closed) the transaction it was given: it fails
        with an OOPS naming what it did; in a group, the group's earlier
        outcomes are settled by what the job did to their work (committed:
        recorded now; rolled back: given back to run again)."""
        committed, what = misuse
        name = "%s (ID %d)" % (type(job).__name__, attempt.job_id)
        closed = not guard_open(get_store())
        if closed:
            forget_store(get_store())  # the next get_store() reconnects
            self.batch_store = None
        transaction.abort()
        attempt.savepoint = None
        if closed:
            # The job's objects belong to the closed store.
            attempt.job = self.reload(attempt.job_id) or job
        if self.group_commit and self.deferred:
            deferred, self.deferred = self.deferred, []
            store = get_store()
            if committed:
                records.record_completed(
                    store, [row[:5] for row in deferred], self.made_ready)
            else:
                # Their work went with the job's rollback: they run again.
                claims.release(store, [(row.job_id, row.attempt)
                                       for row in deferred])
            transaction.commit()
            self.count_group(deferred, committed)
        return FAIL.because(TransactionMisuse(
            "%s %s the transaction the runner gave it (%s): it must leave"
            " its transaction to the runner; its work up to then was %s%s."
            % (name, "committed" if committed else "ended",
               what, "kept" if committed else "lost",
               "; then it raised %s: %s" % (type(error).__name__, error)
               if error is not None else "")))

    # The job source, set by the runners that claim: `reload` loads from it.
    source = None

    def reload(self, job_id):
        """Job `job_id` loaded again in the current store (None if the
        runner has no source or the job is gone)."""
        if self.source is None:
            return None
        jobs = load_jobs(self.source, [job_id])
        return jobs[0] if jobs else None

    def decide(self, job, attempt, error):
        """The policy's outcome of `attempt` of `job` ending with `error`
        (None: run() returned)."""
        policy = DEFAULT_POLICY
        if error is not None:
            try:
                policy = ErrorPolicy.of(job, self.requeue_error_types)
            except JOB_ERRORS:
                # The job's policy attributes are its own code, and broke
                # too: its error is then reported as "anything else".
                pass
        return decide(error, attempt.number, attempt.max_retries, policy)

    def forget(self, job):
        """Let Storm drop a finished job's objects now.

        Until the transaction ends Storm's cache keeps every loaded object,
        and every flush re-serializes each cached JSON value to detect
        changes: in a group of N jobs that is N^2 work.
        """
        store = None
        orm = lean.storm_object(getattr(job, "context", None))
        row = job.__dict__.get("_job_row")
        if orm is not None or row is not None:
            store = get_store()
            for obj in (orm, row):
                if obj is not None and Store.of(obj) is store:
                    forget_object(store, obj)
        if not self.group_commit:
            forget_dead_objects(store or get_store())

