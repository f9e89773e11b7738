"""`JobRunner`: claim jobs, run each attempt in this process, record its
outcome.

A run is a burst (RQ's shape): claim a batch of ready jobs with one fenced
statement (`jobs.model.claims.claim`), run them one after another, claim
the next batch, and stop when the queue is empty, a budget is spent or a
stop is asked for. A cron run is one burst; a worker runs bursts until it
is stopped; a Celery task runs a burst narrowed to one job.

Commits: with per-job commit (``group_commit: 0``) each job's work and
its outcome are committed together, and that commit also publishes the
claim of the next batch when the batch was the last of its claim — one
commit per job. With group commit, the outcomes of up to N jobs share one
commit, each job isolated by a SAVEPOINT. While it holds claimed jobs the
runner's `jobs.heartbeat.Heartbeat` keeps their leases alive.

The outcome of each attempt is decided by `jobs.outcome.decide` and
recorded by `jobs.execution.Execution`.

The seed's import paths are kept: ``jobs.runner.BaseRunnableJob``,
``jobs.runner.JobRunner`` and ``jobs.runner.JobCronScript``.
"""

__all__ = ["BaseRunnableJob", "JobCronScript", "JobRunner"]

import importlib
import logging
from typing import Any, Callable, Iterable, Optional

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError
from zope.interface import implementer

from jobs.database import (
    collect_garbage,
    dialect,
    freeze_long_lived,
    get_store,
)
from jobs.execution import Execution
from jobs.heartbeat import Heartbeat, SideConnection
from jobs.interfaces.runner import IJobRunner
from jobs.model import claims
from jobs.budget import Budget
from jobs.claiming import (
    claim_each, claim_ready, context_of, load_jobs, takes_completion)
from jobs.model.runnable import BaseRunnableJob
from jobs.sections import DEFAULT_SETTINGS, lease_seconds


def __getattr__(name):
    # ``jobs.runner.JobCronScript`` is the seed's path; the script builds
    # on this module, so it is looked up when first asked for (the import
    # arrows stay one way: cronscript -> runner).
    if name == "JobCronScript":
        return importlib.import_module("jobs.cronscript").JobCronScript
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


class _GivenJobs:
    """Explicit jobs (the seed's ``JobRunner(jobs)``), claimed one by one
    with the fenced claim as the run reaches them."""

    def __init__(self, jobs):
        self.jobs = iter(jobs)
        self.lease_duration = BaseRunnableJob.lease_duration

    def claimReady(self, limit, lease_duration):
        return claim_each(self.jobs, limit, lease_duration)


@implementer(IJobRunner)
class JobRunner(Execution):
    """Runs jobs in this process; see the module's docstring.

    :param jobs: explicit runnable jobs to run (the seed's API), or None
        to run `source`'s ready jobs.
    :param logger: where the job lines go (default: this module's logger).
    :param error_reporter: the `jobs.errorlog.ErrorReporter` (default:
        one from the current configuration).
    :param source: the `IJobSource` whose ready jobs to run.
    :param settings: the section's settings (a `jobs.config.JobSection`
        or `jobs.sections.RunSettings`): batch size, group commit, lease,
        max_runtime, log tail.
    :param should_stop: callable; when it returns true, claimed jobs not
        yet started are given back and the run ends.
    :param max_jobs: stop claiming after this many jobs (None: no limit).
    :param max_seconds: stop claiming after this long (None: no limit).
    :param requeue_error_types: see `jobs.outcome.ErrorPolicy`.
    :param keep_jobs: keep each job in `completed_jobs` and
        `incomplete_jobs` (the seed's API); otherwise only counts are kept
        (`completed`, `incomplete`), so that an endless worker's memory
        stays bounded.
    """

    def __init__(self, jobs: Optional[Iterable[Any]] = None,
                 logger: Optional[logging.Logger] = None,
                 error_reporter: Any = None, source: Any = None,
                 settings: Any = None,
                 should_stop: Optional[Callable[[], bool]] = None,
                 max_jobs: Optional[int] = None,
                 max_seconds: Optional[float] = None,
                 requeue_error_types: tuple[type[BaseException], ...] = (),
                 keep_jobs: Optional[bool] = None) -> None:
        if source is None:
            source = _GivenJobs(jobs or ())
        self.source = source
        self.settings = settings or DEFAULT_SETTINGS
        self.batch_size = max(1, self.settings.batch_size or 1)
        group = self.settings.group_commit or 0
        super().__init__(
            logger or logging.getLogger(__name__), error_reporter,
            group_commit=group > 1, settings=self.settings,
            requeue_error_types=requeue_error_types,
            keep_jobs=(jobs is not None) if keep_jobs is None else keep_jobs)
        self.group_size = group if group > 1 else 0
        self.lease_seconds = lease_seconds(self.settings, source)
        self.should_stop = should_stop or (lambda: False)
        self.budget = Budget(max_jobs, max_seconds)
        self.started = 0
        self.heartbeat = None
        # How many jobs the last claim asked for.
        self._limit = self.batch_size
        # The next batch, claimed with the last outcome of this one, and
        # whether that claim found no job.
        self._ahead = None
        self._found_none = False
        # The batch being run; the index of its first job not started.
        self._unstarted = None
        self._first_unstarted = 0

    @classmethod
    def fromReady(cls, source: Any, logger: Optional[logging.Logger] = None,
                  error_reporter: Any = None, **kwargs: Any) -> "JobRunner":
        """A runner over `source`'s ready jobs (the seed's API)."""
        return cls(logger=logger, error_reporter=error_reporter,
                   source=source, **kwargs)

    @classmethod
    def runFromSource(cls, source: Any,
                      logger: Optional[logging.Logger] = None,
                      error_reporter: Any = None,
                      **kwargs: Any) -> "JobRunner":
        """See `IJobRunner`."""
        runner = cls.fromReady(source, logger, error_reporter, **kwargs)
        with context_of(source):
            runner.runAll()
        return runner

    @property
    def budget_reached(self) -> bool:
        """True when the run stopped claiming because of its budget."""
        return self.budget.reached

    def runAll(self) -> int:
        """See `IJobRunner`."""
        batch = None
        try:
            with self.tail:
                self.listen()
                self.concurrent_writes = dialect(
                    get_store()).concurrent_writes
                self.completes_by_claim = self._completes_by_claim()
                while not self.should_stop():
                    if batch is None:
                        batch = self._claim()
                        if not batch:
                            transaction.abort()  # nothing was claimed
                            break
                        # (Not on an empty queue: a cron run's start-up.)
                        freeze_long_lived()
                        # The claim's commit: leases, RUNNING, attempts.
                        transaction.commit()
                        self._watch(batch)
                    full = len(batch) >= self._limit
                    self._found_none = False
                    del self.made_ready[:]
                    self._run_batch(batch)
                    collect_garbage(len(batch))
                    batch, self._ahead = self._ahead, None
                    if batch is not None:
                        self._watch(batch)
                    elif not ((full and not self._found_none)
                              or self.made_ready or self.claim_limits):
                        # Drained (no outcome made a dependent ready, and
                        # no limit held jobs back), or the claim made
                        # with the last outcome found nothing: don't pay
                        # another claim.
                        break
        except StormDatabaseError as e:
            # The connection is gone: nothing can be given back now. The
            # caller gives these committed, unstarted claims back once it
            # has reconnected (`jobs.model.claims.release`).
            e.unstarted_claims = self._unstarted_claims()
            self._unstarted = self._ahead = batch = None
            raise
        finally:
            self.batch_store = None
            unstarted = batch or self._ahead
            self._ahead = None
            if unstarted:
                self._release(unstarted)  # claimed ahead, then stopped
            if self.heartbeat is not None:
                self.heartbeat.stop()
        return self.started

    def _claim(self, about_to_start=0, completing=None):
        """Claim the next batch in the current transaction; the caller
        commits. Return a list of `Attempt`, or None when the budget is
        spent (counting `about_to_start` more jobs). `completing`: see
        `_claim_ahead`."""
        limit = self.budget.allows(self.started + about_to_start,
                                   self.batch_size)
        if not limit:
            return None
        self._limit = limit
        # A group, or a single job, starts as soon as the claim commits;
        # the jobs waiting in a batch are marked one by one (`_mark_next`).
        started = bool(self.group_size) or limit == 1
        batch = [self.make_attempt(claimed, self.lease_seconds)
                 for claimed in claim_ready(self.source, limit,
                                            self.lease_seconds, started,
                                            self.tally, self.claim_limits,
                                            completing)]
        if batch and not started:
            batch[0].start_marked = claims.mark_started(
                get_store(), batch[0].job_id, batch[0].number)
        return batch

    def _mark_next(self, attempt):
        """The outcome transaction of a batch's job also records the
        start of the next: one commit a job, and every attempt's start on
        record before it runs. (The attempt counts as marked once that
        commit succeeded; `completing`: as `_claim_ahead`'s.)"""
        def mark(completing=None):
            if attempt.start_marked:
                return None
            marked = claims.mark_started(get_store(), attempt.job_id,
                                         attempt.number, completing)

            def committed():
                attempt.start_marked = marked

            return committed
        return mark

    def _watch(self, batch):
        if not self.concurrent_writes:
            return  # the job's own transaction holds SQLite's write lock
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(
                SideConnection.of(get_store()), self.lease_seconds,
                self.logger, max_runtime=self.settings.max_runtime)
        self.heartbeat.watch(batch)

    def _completes_by_claim(self):
        """Whether a job's COMPLETED outcome can be recorded by the
        statement that claims the next batch (`_claim_ahead`): on
        PostgreSQL, with no limits to keep, from a source whose claim
        takes it. (A group's outcomes are recorded by the group.)"""
        return (self.claim_limits is None
                and dialect(get_store()).returning
                and takes_completion(self.source))

    def _claim_ahead(self, completing=None):
        """Claim the next batch inside the transaction that records the
        last outcome of this one, so that one commit publishes both; the
        batch is this runner's once that commit succeeds (the returned
        callable). If that transaction is aborted, the claim is undone
        with it. (Not an after-commit hook: the transaction package
        then aborts every resource once more, about 40 µs of client CPU
        a job in a per-job run.)

        `completing`, a `jobs.model.records.Completion`: that outcome,
        recorded by the claim's own statement where it can; when nothing
        else is in the transaction, that statement commits by itself
        (``completing.committed``) and the batch is this runner's at
        once."""
        if self.should_stop():
            return None
        batch = self._claim(about_to_start=1, completing=completing)
        if not batch:
            self._found_none = batch is not None
            return None

        def claimed():
            self._ahead = batch

        return claimed

    def _run_batch(self, batch):
        """Run a claimed, committed batch."""
        jobs = {}
        # A full batch is followed by another claim, made with its last
        # outcome (or group): one commit publishes both.
        full = len(batch) >= self._limit
        if self.group_size:
            batch = self._lock_group(batch)
            jobs = self._load(batch)
            self.batch_store = get_store()  # (the run forgets it)
        last = len(batch) - 1
        in_group = 0
        self._unstarted, self._first_unstarted = batch, 0
        for index, attempt in enumerate(batch):
            if self.should_stop():
                self._unstarted = None
                self._release(batch[index:])
                return
            ahead = index == last and not self.group_size and full
            job = jobs.pop(attempt.job_id, None) if self.group_size \
                else self._load([attempt]).get(attempt.job_id)
            if job is None:
                # Its context row went away since the claim.
                self._release([attempt])
                self._first_unstarted = index + 1
                continue
            self.started += 1
            self._first_unstarted = index + 1
            if ahead:
                before_commit = self._claim_ahead
            elif index < last and not self.group_size:
                before_commit = self._mark_next(batch[index + 1])
            else:
                before_commit = None
            self.runAttempt(job, attempt, before_commit=before_commit)
            self.forget(job)
            in_group += 1
            if self.group_size and in_group >= self.group_size \
                    and index < last:
                self.commit_group()
                in_group = 0
        self._unstarted = None
        if self.group_size:
            self.commit_group(self._claim_ahead if full else None)
            if self.heartbeat is not None:
                self.heartbeat.forget(batch)

    def _lock_group(self, batch):
        """Lock the batch's rows for the group's transaction; drop the
        claims that moved on since the claim (their leases expired)."""
        lost, cancelled = claims.lock(
            get_store(), [(attempt.job_id, attempt.number)
                          for attempt in batch])
        for job_id, number in lost:
            self.logger.warning(
                "Job %d changed under this runner since it was claimed"
                " (attempt %d): skipped.", job_id, number)
        lost = {job_id for job_id, _ in lost}
        kept = []
        for attempt in batch:
            if attempt.job_id in lost:
                if self.heartbeat is not None:
                    self.heartbeat.forget([attempt])
                continue
            attempt.row_locked = True
            if attempt.job_id in cancelled:
                attempt.cancel_requested = True
            kept.append(attempt)
        return kept

    def _load(self, attempts):
        """``{job_id: runnable job}`` for `attempts`, each bound to its
        attempt (jobs a claim loaded already are not loaded again)."""
        jobs = {attempt.job_id: attempt.job for attempt in attempts
                if attempt.job is not None}
        missing = [attempt.job_id for attempt in attempts
                   if attempt.job_id not in jobs]
        if missing:
            for job in load_jobs(self.source, missing):
                jobs[job.job_id] = job
        return jobs

    def _release(self, attempts):
        """Give `attempts` — claimed, not started — back to the queue."""
        # The group so far keeps its outcomes.
        if self.group_size:
            self.commit_group()
        else:
            transaction.commit()
        if self.heartbeat is not None:
            self.heartbeat.forget(attempts)
        released = claims.release(get_store(), [
            (attempt.job_id, attempt.number) for attempt in attempts])
        transaction.commit()
        self.logger.info("Released %d claimed jobs that had not started.",
                         released)
        if released < len(attempts):
            self.logger.info(
                "%d claimed jobs had moved on since the claim (their leases"
                " expired and another runner took them): left as they are.",
                len(attempts) - released)

    def _unstarted_claims(self):
        """``[(job_id, attempt)]`` claimed, committed and never started."""
        attempts = []
        if self._unstarted is not None:
            attempts += self._unstarted[self._first_unstarted:]
        if self._ahead is not None:
            attempts += self._ahead
        return [(attempt.job_id, attempt.number) for attempt in attempts]
