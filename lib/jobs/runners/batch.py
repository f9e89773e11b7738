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
from storm.info import get_obj_info
from storm.store import Store

from jobs.database import collect_garbage, get_store
from jobs.errors import StaleJob
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
        stop is asked for; return the number of jobs started."""
        self.fail_lost()
        while not self.should_stop():
            limit = self.budget.allows(self.started, self.batch_size)
            if not limit:
                break
            jobs = self.source.claimReady(limit, self.lease_duration)
            if not jobs:
                transaction.abort()  # nothing was claimed
                break
            # The batch's one claim commit: leases, RUNNING, attempts.
            transaction.commit()
            self._run_batch(jobs)
            collect_garbage()
            if len(jobs) < limit:
                break  # the queue is drained; don't pay another claim
        return self.started

    def _run_batch(self, jobs):
        if self.group_commit and hasattr(jobs, "preload"):
            jobs.preload()
        in_group = 0
        for index, job in enumerate(jobs):
            if self.should_stop():
                self._release(list(jobs[index:]))
                return
            if job.job.cancel_requested:
                # Cancelled after the claim: never started, never runs.
                self._cancel(job)
                continue
            self.started += 1
            self.runner.runJobHandleError(job)
            self._forget(job)
            in_group += 1
            if self.group_commit and in_group >= self.group_commit:
                transaction.commit()
                in_group = 0
        if self.group_commit:
            transaction.commit()

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
        changes: in a group of N jobs that is N^2 work.
        """
        store = get_store()
        for obj in (getattr(job, "context", None), job.job):
            if obj is not None and Store.of(obj) is store:
                # Out of the cache is enough: once nothing refers to the
                # object, Storm forgets it (no need to reset its columns).
                store._cache.remove(get_obj_info(obj))

    def _release(self, jobs):
        """Give unstarted claimed jobs back to the queue."""
        transaction.commit()  # the group so far keeps its outcomes
        for job in jobs:
            try:
                job.job.release()
            except StaleJob as e:
                self.logger.info("%s", e)
        transaction.commit()
        self.logger.info("Released %d claimed jobs that had not started.",
                         len(jobs))
