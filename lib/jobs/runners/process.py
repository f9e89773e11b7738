"""`ProcessJobRunner`: each job in a child process, with hard limits.

A pool of N child processes, started with the ``spawn`` method (a fresh
interpreter: nothing — no database connection, no Storm store — is shared
across a fork). Each child opens its own connection, logged in as the
section's role, and runs the jobs the parent sends it through the same
`JobRunner` code as every runner (same outcome table, OOPS reports, log
lines).

The parent claims jobs and enforces the limits:

- **Time**: a job's hard deadline is its lease. Past it the child is
  killed, and the job ends FAILED with an OOPS of type `TimeoutError`,
  value ``Job ran too long.`` (or is retried, if `TimeoutError` is one of
  its retry types and attempts are left).
- **Memory**: ``memory_limit`` (section, else the source's) is applied
  with RLIMIT_AS in the child around each job: an allocation beyond it
  raises MemoryError in the job, which fails it with that OOPS.
- **Death**: a child that exits or is killed mid-job fails its job with
  an OOPS naming the exit status or signal.

A child that failed or died is replaced; the other jobs go on.
"""

__all__ = ["ProcessJobRunner"]

import logging
import multiprocessing
import multiprocessing.connection
import resource
import signal
import sys
import time

import transaction

from jobs.database import dialect, get_store
from jobs.errors import StaleJob
from jobs.model.job import Job
from jobs.runner import JobRecord, JobRunner, LazyJobStr
from jobs.runners.budget import Budget

TIMEOUT_MESSAGE = "Job ran too long."
CANCEL_POLL = 1.0  # seconds


class ChildDied(Exception):
    """The child process running the job exited or was killed."""


class _Child:
    """One child process and the job it runs (if any)."""

    def __init__(self, context, settings):
        self.connection, child_end = multiprocessing.Pipe()
        self.process = context.Process(
            target=child_main, args=(child_end, settings), daemon=True)
        self.process.start()
        child_end.close()
        self.job_id = None
        self.attempt = None
        self.deadline = None
        self.cancel_noticed = None

    @property
    def idle(self):
        return self.job_id is None

    def send(self, job_id, attempt, deadline):
        self.job_id, self.attempt, self.deadline = job_id, attempt, deadline
        self.connection.send((job_id, attempt))

    def done(self):
        self.job_id = self.attempt = self.deadline = None
        self.cancel_noticed = None

    def stop(self, kill=False):
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(30)
        self.connection.close()


class ProcessJobRunner:
    """Runs a section's ready jobs in a pool of child processes.

    :param source: the section's `IJobSource`.
    :param config: the `JobsConfig`.
    :param settings: the section's `JobSection`.
    :param processes: the pool's size.
    :ivar runner: a `JobRunner` holding the outcome lists and OOPS ids.
    """

    def __init__(self, source, config, settings, processes, logger=None,
                 error_reporter=None, batch_size=1, max_jobs=None,
                 max_seconds=None, should_stop=None):
        self.source = source
        self.settings = {
            "config_path": config.path,
            "section": settings.name,
            "dbuser": settings.dbuser,
            "source_interface": source_interface_name(source, settings),
            "memory_limit": (settings.memory_limit
                             if settings.memory_limit is not None
                             else getattr(source, "memory_limit", None)),
            "log_level": (logger or logging.getLogger()).getEffectiveLevel(),
            "tail_level": settings.log_level,
            "log_tail_chars": settings.log_tail_chars,
        }
        self.processes = max(1, processes)
        # The hard deadline is the lease the claim gives each job.
        self.lease = (settings.lease_seconds if settings.lease_seconds
                      else source.lease_duration.total_seconds())
        self.logger = logger or logging.getLogger(__name__)
        self.runner = JobRunner([], self.logger, error_reporter,
                                keep_jobs=False)
        self.budget = Budget(max_jobs, max_seconds)
        self.cancel_grace = settings.grace_period
        self.should_stop = should_stop or (lambda: False)
        self.started = 0
        self.completed_jobs = self.runner.completed_jobs
        self.incomplete_jobs = self.runner.incomplete_jobs
        self.oops_ids = self.runner.oops_ids
        self.context = multiprocessing.get_context("spawn")

    def runAll(self):
        """Claim and run until the queue is drained (or a budget or stop)."""
        self.logger.info("Running through %d child processes.",
                         self.processes)
        for job in self.source.iterLost():
            if self.runner.acquireLease(job):
                self.runner.runJobHandleError(job)
        transaction.abort()
        children = [_Child(self.context, self.settings)
                    for _ in range(self.processes)]
        drained = False
        try:
            while True:
                idle = [child for child in children if child.idle]
                if idle and not drained and not self.should_stop():
                    drained = self._dispatch(idle)
                busy = [child for child in children if not child.idle]
                if not busy:
                    break
                self._wait(children, busy)
        finally:
            for child in children:
                child.stop(kill=not child.idle)
        return self.started

    def _dispatch(self, idle):
        """Claim jobs for the idle children; return True when drained."""
        limit = self.budget.allows(self.started, len(idle))
        if not limit:
            return True
        claimed = self.source.claimReady(limit, self.lease)
        transaction.commit()
        if not claimed:
            return True
        for child, (job_id, attempt) in zip(idle, claimed.claimed):
            child.send(job_id, attempt, time.monotonic() + self.lease)
            self.started += 1
        return False

    def _wait(self, children, busy):
        # Wake at least every CANCEL_POLL seconds to look for cancellations.
        timeout = max(0.0, min(min(child.deadline for child in busy)
                               - time.monotonic(), CANCEL_POLL))
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
            self._died(children, child)
        now = time.monotonic()
        for child in busy:
            if not child.idle and child.deadline <= now:
                self._timed_out(children, child)
        self._cancel_requested(children)

    def _cancel_requested(self, children):
        """Stop the running jobs an operator cancelled: after the grace
        period their children are killed and the jobs end CANCELLED."""
        running = {child.job_id: child for child in children
                   if not child.idle}
        store = get_store()
        if not running or dialect(store) != "postgresql":
            # On SQLite a running job holds the write lock: reading here
            # would wait for it (and a cancel request could not be
            # written meanwhile anyway).
            return
        requested = set(store.find(
            Job.id, Job.id.is_in(list(running)), Job.cancel_requested))
        transaction.abort()
        now = time.monotonic()
        for job_id in requested:
            child = running[job_id]
            if child.cancel_noticed is None:
                child.cancel_noticed = now
                self.logger.info("Job %d: cancel requested; stopping it in"
                                 " %s s.", job_id, self.cancel_grace)
            if now - child.cancel_noticed < self.cancel_grace:
                continue
            attempt = child.attempt
            child.stop(kill=True)
            child.done()
            self._replace(children, child)
            jobs = self.source.getJobs([job_id])
            if jobs:
                job = jobs[0]
                job.job._attempt = attempt
                try:
                    job.job.record_cancelled()
                    transaction.commit()
                    self.logger.info("Cancelled %s.", LazyJobStr(job))
                except StaleJob as e:
                    transaction.abort()
                    self.logger.info("%s", e)
                self.runner._record(job, completed=False)

    def _finished(self, child, message):
        job_id, job_type, completed, oops_id = message
        (self.runner.completed_jobs if completed
         else self.runner.incomplete_jobs).append(JobRecord(job_type, job_id))
        if oops_id:
            self.runner.oops_ids.append(oops_id)
        child.done()

    def _replace(self, children, child):
        children[children.index(child)] = _Child(self.context, self.settings)

    def _died(self, children, child):
        child.process.join(5)
        code = child.process.exitcode
        if code is not None and code < 0:
            cause = "was killed by signal %s" % signal.Signals(-code).name
        else:
            cause = "exited with status %s" % code
        self._fail(child, ChildDied(
            "The child process running the job %s." % cause))
        child.stop(kill=True)
        self._replace(children, child)

    def _timed_out(self, children, child):
        self.logger.info("Job %d ran past its lease: killing its process.",
                         child.job_id)
        child.stop(kill=True)
        self._fail(child, TimeoutError(TIMEOUT_MESSAGE))
        self._replace(children, child)

    def _fail(self, child, error):
        """Record `error` as the outcome of the child's job (in the parent)."""
        job_id, attempt = child.job_id, child.attempt
        child.done()
        jobs = self.source.getJobs([job_id])
        if not jobs:
            return
        job = jobs[0]
        job.job._attempt = attempt
        self.logger.info("Running %s failed in its child process: %s",
                         LazyJobStr(job), error)
        try:
            if (isinstance(error, job.retry_error_types)
                    and job.attempt_count <= job.max_retries):
                self.logger.info("Scheduling retry due to %s: %s.",
                                 type(error).__name__, error)
                job.queue(manage_transaction=True)
                self.runner._record(job, completed=False)
                return
            # Filed before FAILED is committed (see JobRunner.runJob).
            report = self.runner._file_oops(
                job, (type(error), error, error.__traceback__))
            job.fail(manage_transaction=True)
        except StaleJob as e:
            transaction.abort()
            self.logger.info("%s", e)
            return
        self.runner._record(job, completed=False)
        self.runner._notify(job, job.notifyOops, report)
        transaction.abort()


def source_interface_name(source, settings):
    """The dotted name of the section's source interface."""
    name = getattr(settings, "source_interface", None)
    if name or getattr(settings, "tasks", None):
        return name  # None: a section of @task functions (jobs.tasks)
    from zope.interface import providedBy
    interface = list(providedBy(source))[0]
    return interface.__identifier__


def child_main(connection, settings):
    """A child: set up, then run the jobs the parent sends until told to
    stop (None) or the pipe closes."""
    from zope.component import getUtility
    from zope.dottedname.resolve import resolve

    from jobs.config import load, set_config
    from jobs.database import connect, set_role
    from jobs.errorlog import Redactor
    from jobs.registration import register_components
    from jobs.runner import default_error_reporter
    from jobs.scripts.logger import formatter

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    logging.basicConfig(level=settings["log_level"], stream=sys.stderr)
    # The transaction package's DEBUG chatter is not the operator's.
    logging.getLogger("txn").setLevel(max(logging.INFO, settings["log_level"]))
    logger = logging.getLogger("run_jobs")
    config = load(settings["config_path"])
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(Redactor(config.redact).text))
    set_config(config)
    register_components(config)
    connect(config.database_uri)
    # Connected as the section's role only: the login role's connection
    # is never opened here.
    store = set_role(settings["dbuser"])
    if settings["source_interface"] is None:
        from jobs.runner import find_section_source
        source = find_section_source(config, settings["section"])
    else:
        source = getUtility(resolve(settings["source_interface"]))
    runner = JobRunner([], logger, default_error_reporter(settings["section"]),
                       keep_jobs=False, log_level=settings["tail_level"],
                       log_tail_chars=settings["log_tail_chars"])
    memory_limit = settings["memory_limit"]
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        job_id, attempt = message
        # A malformed row comes back as an UnloadableJob, which fails.
        jobs = getattr(source, "loadJobs", source.getJobs)([job_id])
        if not jobs:
            connection.send((job_id, "?", False, None))
            continue
        job = jobs[0]
        job.job._attempt = attempt
        job_type = type(job).__name__
        before = len(runner.completed_jobs)
        previous = resource.getrlimit(resource.RLIMIT_AS)
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, previous[1]))
        try:
            report = runner.runJobHandleError(job)
        finally:
            if memory_limit:
                resource.setrlimit(resource.RLIMIT_AS, previous)
        completed = len(runner.completed_jobs) > before
        connection.send((job_id, job_type, completed,
                         report["id"] if report else None))
        del job, jobs
