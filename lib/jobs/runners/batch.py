"""`BatchRunner`: claim ready jobs N at a time and run them, optionally
committing the outcomes of several jobs together (group commit).

Commits: one per batch for the claim, then one per job (its work and its
outcome together) — or, with group commit, one per group of jobs, each
job isolated by a SAVEPOINT. Group commit trades durability of the last
outcomes for speed: a crash before the group's commit loses those
outcomes, and the jobs run again when their leases expire (at least once,
as with every queue); their OOPS reports may then exist twice.
"""

__all__ = ["BatchRunner"]

import logging

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.store import Store

from jobs.database import collect_garbage, forget_dead_objects, get_store
from jobs.database.stormext import forget_object
from jobs.errors import StaleJob
from jobs.model.job import Job
from jobs.runner import JobRunner, job_str
from jobs.runners.budget import Budget


class BatchRunner:
    """Runs a source's ready jobs in claimed batches until none is left.

    :param source: an `IJobSource` with ``claimReady``.
    :param batch_size: jobs claimed per statement.
    :param group_commit: jobs per commit (0 or 1: one commit per job).
    :param max_jobs: stop claiming after this many jobs (None: no limit).
    :param max_seconds: stop claiming after this long (None: no limit).
    :param should_stop: callable; when it returns true, claimed jobs not
        yet started are given back and the run ends.
    :param lease_duration: seconds of each claimed job's lease (None: the
        job class's `lease_duration`).
    :param requeue_error_types: see `JobRunner`.
    :ivar runner: the `JobRunner` that ran the jobs (its lists, OOPS ids).
    """

    def __init__(self, source, logger=None, error_reporter=None,
                 batch_size=50, group_commit=0, max_jobs=None,
                 max_seconds=None, should_stop=None, lease_duration=None,
                 log_level=logging.INFO, log_tail_chars=8000,
                 requeue_error_types=()):
        self.source = source
        self.lease_duration = lease_duration
        self.logger = logger or logging.getLogger(__name__)
        self.batch_size = max(1, batch_size)
        self.group_commit = group_commit if group_commit > 1 else 0
        self.budget = Budget(max_jobs, max_seconds)
        self.should_stop = should_stop or (lambda: False)
        self.runner = JobRunner(
            [], self.logger, error_reporter,
            group_commit=bool(self.group_commit), keep_jobs=False,
            log_level=log_level, log_tail_chars=log_tail_chars,
            requeue_error_types=requeue_error_types)
        self.started = 0
        # The next batch, claimed with the last outcome of this one.
        self._ahead = None
        # (jobs, index): the batch being run, and its first job not started.
        self._unstarted = None

    @property
    def budget_reached(self):
        """True when the run stopped claiming because of its budget."""
        return self.budget.reached

    def fail_lost(self):
        """Fail the orphans that have no attempts left (LostRunner OOPS)."""
        lost = self.source.iterLost()
        transaction.abort()  # read-only so far
        for job in lost:
            if self.runner.acquireLease(job):
                self.runner.runJobHandleError(job)

    def run(self):
        """Claim and run until the queue is empty, a budget is spent or a
        stop is asked for; return the number of jobs started.

        :raises DatabaseError: (Storm's) when the database is lost; its
            ``unstarted_claims`` attribute lists ``(job_id, attempt)`` of
            the jobs whose claim was committed but which never started,
            for the caller to give back (`Job.release_claimed`) once it
            has reconnected.
        """
        self.fail_lost()
        batch = None
        try:
            while not self.should_stop():
                if batch is None:
                    batch = self._claim()
                    if batch is None or not batch[0]:
                        batch = None
                        transaction.abort()  # nothing was claimed
                        break
                    # The batch's claim commit: leases, RUNNING, attempts.
                    transaction.commit()
                (jobs, limit), batch = batch, None
                self._unstarted = (jobs, 0)
                with self.runner.tail:
                    self._run_batch(jobs, ahead=len(jobs) == limit)
                self._unstarted = None
                collect_garbage()
                batch, self._ahead = self._ahead, None
                if batch is None and len(jobs) < limit:
                    break  # the queue is drained; don't pay another claim
        except StormDatabaseError as e:
            # The connection is gone: nothing can be released now. These
            # claims were committed (a claim whose commit failed is not
            # known to be this runner's, and is left to its lease).
            claims = []
            if self._unstarted is not None:
                claims += unstarted_claims(*self._unstarted)
            if self._ahead is not None:
                claims += unstarted_claims(self._ahead[0])
            self._unstarted = self._ahead = batch = None
            e.unstarted_claims = claims
            raise
        finally:
            unstarted = batch or self._ahead
            self._ahead = None
            if unstarted is not None and unstarted[0]:
                # Claimed with the last outcome, then told to stop.
                self._release(unstarted[0])
        return self.started

    def _claim(self, about_to_start=0):
        """Claim the next batch in the current transaction; the caller
        commits. Return ``(jobs, how many were asked for)``, or None when
        the budget is spent (counting `about_to_start` more jobs)."""
        limit = self.budget.allows(self.started + about_to_start,
                                   self.batch_size)
        if not limit:
            return None
        return self.source.claimReady(limit, self.lease_duration), limit

    def _claim_ahead(self):
        """Claim the next batch inside the transaction that runs the last
        job of this one, so that the job's outcome commit also publishes
        the claim: one commit per job instead of two, with the same
        guarantees (every job's claim is committed before it runs, its
        outcome after). If that transaction is aborted instead (the job
        failed, went stale), the claim is undone with it and the next
        batch is claimed on its own.
        """
        if self.should_stop():
            return
        batch = self._claim(about_to_start=1)
        if batch is None or not batch[0]:
            return

        def claimed(committed):
            if committed:
                self._ahead = batch

        transaction.get().addAfterCommitHook(claimed)

    def _run_batch(self, jobs, ahead=False):
        """Run a claimed batch; with `ahead`, the last job's transaction
        claims the next batch too (not in a group: its commits are rare
        already)."""
        if self.group_commit and hasattr(jobs, "lock"):
            for job_id, attempt in jobs.lock():
                self.logger.info(
                    "Job %d changed under this runner since it was claimed"
                    " (attempt %d); skipped.", job_id, attempt)
        in_group = 0
        last = len(jobs) - 1
        for index in range(len(jobs)):
            if self.should_stop():
                self._release(jobs, index)
                return
            if index == last and ahead and not self.group_commit:
                self._claim_ahead()
            job = jobs[index]
            if job is None:
                continue  # its rows went away since the claim
            if cancel_requested(job):
                # Cancelled after the claim: never started, never runs.
                self._cancel(job)
                continue
            self.started += 1
            self._unstarted = (jobs, index + 1)
            self.runner.runJobHandleError(job)
            self._forget(job)
            in_group += 1
            if self.group_commit and in_group >= self.group_commit:
                self._commit_group()
                in_group = 0
        if self.group_commit:
            self._commit_group()

    def _commit_group(self):
        forget_dead_objects(get_store())
        self.runner.commit_group()

    def _cancel(self, job):
        try:
            job.job.record_cancelled()
            if not self.group_commit:
                transaction.commit()
            self.logger.info("Cancelled %s before it started.", job_str(job))
        except StaleJob as e:
            transaction.abort()
            self.logger.info("%s", e)

    def _forget(self, job):
        """Let Storm drop a finished job's objects now.

        Until the transaction ends Storm's cache keeps every loaded object,
        and every flush re-serializes each cached JSON value to detect
        changes: in a group of N jobs that is N^2 work. Its weak map of
        live objects keeps dead ones too until the garbage collector breaks
        their cycles, and every commit resets every column of each one.
        """
        store = get_store()
        row = job.job if getattr(job, "job_row_loaded", True) else None
        for obj in (getattr(job, "context", None), row):
            if obj is not None and Store.of(obj) is store:
                # Out of the strong cache: once nothing else refers to the
                # object, it dies.
                forget_object(store, obj)
        if not self.group_commit:
            # Before the next commit (a group does it before its own).
            forget_dead_objects(store)

    def _release(self, jobs, start=0):
        """Give `jobs` from `start` — claimed, not started — back to the
        queue."""
        # The group so far keeps its outcomes.
        if self.group_commit:
            self.runner.commit_group()
        else:
            transaction.commit()
        claims = unstarted_claims(jobs, start)
        released = Job.release_claimed(get_store(), claims)
        transaction.commit()
        self.logger.info("Released %d claimed jobs that had not started.",
                         released)
        if released < len(claims):
            self.logger.info(
                "%d claimed jobs had moved on since the claim (their leases"
                " expired and another runner took them): left as they are.",
                len(claims) - released)


def unstarted_claims(jobs, start=0):
    """``[(job_id, attempt)]`` of claimed `jobs` from index `start`,
    without loading the ones not loaded yet."""
    claimed = getattr(jobs, "claimed", None)
    if claimed is not None:
        return list(claimed[start:])
    return [(job.job_id, job.job._attempt) for job in jobs[start:]
            if job is not None]


def cancel_requested(job):
    """Whether a cancel was requested for claimed `job` (read at its load
    when the source could, else from its row)."""
    claim = getattr(job, "_claim", None)
    if claim is not None and claim.cancel_requested is not None:
        return claim.cancel_requested
    return job.job.cancel_requested
