"""`ProcessJobRunner`: each job in a child process, with hard limits.

A pool of N child processes, started with the ``spawn`` method (a fresh
interpreter: nothing — no database connection, no Storm store — is shared
across a fork). Each child connects as the section's role and runs the
jobs the parent sends it through the same `jobs.execution.Execution` as
every runner (same outcome policy, OOPS reports, log lines); see
`jobs.runners.child`.

The parent claims jobs, keeps their leases alive with its heartbeat, and
enforces the limits, recording outcomes through the outcome policy:

- **Time**: past the section's ``max_runtime`` the child is killed and
  the job ends FAILED with an OOPS of type `TimeoutError`, value ``Job ran
  too long.`` (or is retried, if `TimeoutError` is one of its retry types
  and attempts are left). Without ``max_runtime`` there is no limit: the
  heartbeat renews the lease while the child lives.
- **Memory**: ``memory_limit`` (section, else the source's) is applied
  with RLIMIT_AS in the child around each job.
- **Death**: a child that exits or is killed mid-job fails its job with a
  `ChildDied` OOPS naming the exit status or signal.
- **Cancellation**: when the heartbeat sees a cancel request, the child is
  told (SIGUSR1: the job's ``check_cancelled()`` raises); if the job still
  runs `grace_period` seconds later, the child is killed and the job ends
  CANCELLED.

A child that failed or died is replaced; the other jobs go on.
"""

__all__ = ["ProcessJobRunner"]

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time

import transaction
from zope.interface import implementer, providedBy

from jobs.database import get_store
from jobs.database.confine import child_uri
from jobs.errors import ChildDied, JobCancelled, SectionError
from jobs.execution import Execution, job_str
from jobs.outcome import REQUEUE, decide_lost
from jobs.heartbeat import Heartbeat, SideConnection
from jobs.interfaces.runner import IJobRunner
from jobs.claiming import claim_ready, context_of, load_jobs, loads_by_id
from jobs.budget import Budget
from jobs.runners.child import LOST, TIMEOUT_MESSAGE
from jobs.runners.pool import ChildPool
from jobs.sections import DEFAULT_SETTINGS, lease_seconds

POLL = 1.0  # seconds between looks at deadlines and cancel grace
# Seconds past max_runtime at which the parent kills a child whose job
# did not stop itself.
KILL_MARGIN = 5.0


@implementer(IJobRunner)
class ProcessJobRunner(Execution):
    """Runs a section's ready jobs in a pool of child processes.

    :param source: the section's `IJobSource`.
    :param config: the `JobsConfig` (the children load it again).
    :param processes: the pool's size.
    """

    def __init__(self, source, logger=None, error_reporter=None,
                 settings=None, config=None, processes=2, should_stop=None,
                 max_jobs=None, max_seconds=None, pool=None,
                 keep_pool=False):
        settings = settings or DEFAULT_SETTINGS
        logger = logger or logging.getLogger(__name__)
        super().__init__(logger, error_reporter, settings=settings)
        self.source = source
        self.settings = settings
        self.lease_seconds = lease_seconds(settings, source)
        self.child_settings = {
            "config_path": config.path,
            "section": settings.name,
            "dbuser": settings.dbuser,
            "database_uri": child_uri(config.database_uri, settings.dbuser),
            "source_interface": source_interface_name(source, settings),
            "memory_limit": (settings.memory_limit
                             if settings.memory_limit is not None
                             else getattr(source, "memory_limit", None)),
            "log_level": logger.getEffectiveLevel(),
            "tail_level": settings.log_level,
            "log_tail_chars": settings.log_tail_chars,
            "max_runtime": settings.max_runtime,
            "statement_timeout": settings.statement_timeout,
            "grace_period": settings.grace_period,
        }
        self.processes = max(1, processes)
        # A worker keeps the section's pool between its passes.
        self.keep_pool = keep_pool
        self.pool = pool or ChildPool(self.child_settings, self.processes,
                                      logger)
        self.max_runtime = settings.max_runtime
        self.cancel_grace = settings.grace_period
        self.budget = Budget(max_jobs, max_seconds)
        self.should_stop = should_stop or (lambda: False)
        self.started = 0

    @classmethod
    def runFromSource(cls, source, logger=None, error_reporter=None,
                      **kwargs):
        """See `IJobRunner`."""
        if not loads_by_id(source):
            raise SectionError(
                "Section %s: its source %r cannot load a job by its id"
                " (it has no getJobs or get, only iterReady): it cannot run"
                " in child processes." % (
                    getattr(kwargs.get("settings"), "name", None), source))
        runner = cls(source, logger, error_reporter, **kwargs)
        with context_of(source):
            runner.runAll()
        return runner

    @property
    def budget_reached(self):
        return self.budget.reached

    def runAll(self):
        """Claim and run until the queue is drained (or a budget or stop)."""
        self.heartbeat = Heartbeat(
            SideConnection.of(get_store()), self.lease_seconds, self.logger,
            on_cancel=self._cancel_noticed)
        pool = self.pool
        drained = False
        try:
            while True:
                if pool.free() and not drained and not self.should_stop():
                    drained = self._dispatch(pool.free())
                busy = pool.busy()
                if not busy:
                    break
                self._wait(busy)
        finally:
            if not self.keep_pool:
                pool.stop()
            else:
                for child in pool.busy():
                    pool.replace(child)
            self.heartbeat.stop()
        return self.started

    def _dispatch(self, free):
        """Claim jobs for `free` children; return True when drained."""
        limit = self.budget.allows(self.started, free)
        if not limit:
            return True
        # Every claimed job goes to a child at once: its start is on record
        # with the claim.
        claimed = claim_ready(self.source, limit, self.lease_seconds,
                              started=True, tally=self.tally,
                              limits=self.claim_limits)
        transaction.commit()
        if not claimed:
            return True
        attempts = [self.make_attempt(one, self.lease_seconds)
                    for one in claimed]
        self.heartbeat.watch(attempts)
        for child, attempt in zip(self.pool.take(len(attempts)), attempts):
            # The child stops its job at max_runtime itself; this is the
            # parent's backstop.
            deadline = (None if self.max_runtime is None else
                        time.monotonic() + self.max_runtime + KILL_MARGIN)
            child.send(attempt, deadline)
            self.started += 1
        return False

    def _wait(self, busy):
        now = time.monotonic()
        timeout = POLL
        for child in busy:
            if child.deadline is not None:
                timeout = min(timeout, max(0.0, child.deadline - now))
        waitables = {}
        for child in busy:
            waitables[child.connection] = child
            waitables[child.process.sentinel] = child
        ready = multiprocessing.connection.wait(list(waitables), timeout)
        for item in ready:
            child = waitables[item]
            if child.idle:
                continue
            if item is child.connection:
                try:
                    message = child.connection.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    self._finished(child, message)
                    continue
            self._died(child)
        now = time.monotonic()
        for child in busy:
            if child.idle:
                continue
            if child.deadline is not None and child.deadline <= now:
                self._end(child, TimeoutError(TIMEOUT_MESSAGE),
                          "ran past its max_runtime (%s s): killing its"
                          " process" % self.max_runtime)
            elif (child.cancel_noticed is not None
                  and now - child.cancel_noticed >= self.cancel_grace):
                self._end(child, JobCancelled(
                    "Job %d was cancelled while running."
                    % child.attempt.job_id),
                    "still ran %s s after its cancel request: killing its"
                    " process" % self.cancel_grace)

    def _cancel_noticed(self, attempt):
        """The heartbeat saw a cancel request: tell the child's job."""
        for child in self.pool.busy():
            if child.attempt is attempt:
                child.cancel_noticed = time.monotonic()
                try:
                    os.kill(child.process.pid, signal.SIGUSR1)
                except ProcessLookupError:
                    pass

    def _finished(self, child, message):
        job_type, outcome, oops_id = message
        attempt = child.attempt
        if outcome == LOST:
            # The child's connection went away mid-job: like a crash, the
            # attempt is lost, its work rolled back with the connection.
            child.done()
            self._lost(attempt)
            return
        attempt.recorded = True
        self.heartbeat.forget([attempt])
        (self.completed if outcome == "complete"
         else self.incomplete)[job_type] += 1
        self.tally.outcome(job_type, outcome, attempt.seconds(), attempt.lost)
        if oops_id:
            self.filed_oops(oops_id)
        child.done()

    def _lost(self, attempt):
        """Record a lost attempt at once (this runner lives): the job runs
        again while attempts are left, else fails with `LostRunner`."""
        jobs = load_jobs(self.source, [attempt.job_id])
        if not jobs:
            self.heartbeat.forget([attempt])
            transaction.abort()
            return
        self.logger.info("The child running %s lost its database"
                         " connection.", job_str(jobs[0]))
        self.record_outcome(jobs[0], attempt, decide_lost(
            attempt.number, attempt.max_retries) or REQUEUE)

    def _died(self, child):
        child.process.join(5)
        code = child.process.exitcode
        if code is not None and code < 0:
            cause = "was killed by signal %s" % signal.Signals(-code).name
        else:
            cause = "exited with status %s" % code
        if child.cancel_noticed is not None:
            # Asked to stop: the operator's cancel is the outcome (a
            # child still starting up dies of the SIGUSR1 it was sent).
            self._end(child, JobCancelled(
                "Job %d was cancelled while running; its process %s."
                % (child.attempt.job_id, cause)))
            return
        self._end(child, ChildDied(
            "The child process running the job %s." % cause))

    def _end(self, child, error, why=None):
        """Kill `child`, replace it, and record `error` as the outcome of
        its attempt (in the parent, through the outcome policy)."""
        attempt = child.attempt
        if why:
            self.logger.info("Job %d %s.", attempt.job_id, why)
        child.done()
        self.pool.replace(child)
        jobs = load_jobs(self.source, [attempt.job_id])
        if not jobs:
            self.heartbeat.forget([attempt])
            transaction.abort()
            return
        job = jobs[0]
        self.logger.info("Running %s failed in its child process: %s",
                         job_str(job), error)
        self.record_outcome(job, attempt, self.decide(job, attempt, error))


def source_interface_name(source, settings):
    """The dotted name of the section's source interface."""
    name = getattr(settings, "source_interface", None)
    if name:
        return name if isinstance(name, str) else name.__identifier__
    if getattr(settings, "tasks", None):
        return None  # a section of @task functions (jobs.tasks)
    return list(providedBy(source))[0].__identifier__
