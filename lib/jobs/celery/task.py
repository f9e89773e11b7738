"""Celery workers: the ``jobs.run_job`` task and the worker command.

A message says only "job N is ready"; the database decides. The task
claims the job with the same atomic, fenced claim as every runner
(`IJobSource.claimJob`, tried by each section's source, Celery-enabled
sections first: a duplicate or late message finds the job taken, finished
or not due, and does nothing) and runs it through `jobs.runner.JobRunner`:
the same outcome policy, OOPS reports, log lines and lease heartbeat as
``run_jobs.py``. Then:

- a retry (WAITING until ``scheduled_start``) is sent again with the
  delay as the message's countdown. A message that arrives before its job
  is due is sent again for the rest of the wait: ``scheduled_start`` in
  the database decides, never the countdown;
- a job whose soft time limit expired is given back (its work rolled
  back, WAITING, the attempt counted) and sent to ``[celery]
  fallback_queue``, with that queue's own limits. In the fallback queue
  the soft limit is an ordinary failure (FAILED, OOPS).

While a worker process runs a job, its heartbeat renews the job's lease;
a worker process killed by the hard limit stops renewing it, and once it
expires the sweep (`jobs.celery.sweep`) sends the job again and the next
claim takes it over as a new attempt.

Each worker process opens its own store after the fork
(``worker_process_init``): a database connection must never cross a fork.
It also registers in the worker table (`jobs.presence`) and beats there
until it exits; ``jobs cancel --worker ID`` then asks for a warm shutdown
of the Celery worker it belongs to.
"""

__all__ = [
    "TaskRunner",
    "register_task",
    "run_job",
    "worker_main",
]

import logging
import os
import signal

import transaction
from celery import signals
from celery.exceptions import SoftTimeLimitExceeded
from storm.expr import Select

from jobs.celery.dispatch import TASK_NAME, celery_app, send_jobs
from jobs.config import get_config, set_config
from jobs.database import UTCDateTime, UTCNow, connect, get_store, set_role
from jobs.errors import DispatchError, SectionError
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job, ready_condition
from jobs.model.limits import Limits
from jobs.claiming import claim_one, context_of, load_jobs
from jobs.presence import Presence
from jobs.registration import register_components
from jobs.runner import JobRunner
from jobs.sections import error_reporter_for, find_section

logger = logging.getLogger(__name__)
# Seconds before a job its section's limits held back is tried again.
LIMITED_RETRY = 1.0


class _OneJob:
    """`source` narrowed to the one job a message names."""

    def __init__(self, source, job_id):
        self.source = source
        self.job_id = job_id
        self.lease_duration = getattr(source, "lease_duration", None)

    def claimReady(self, limit, lease_duration=None, started=False,
                   limits=None):
        return claim_one(self.source, self.job_id, lease_duration, started,
                         limits)

    def getJobs(self, job_ids):
        return load_jobs(self.source, job_ids)

    def contextManager(self):
        return context_of(self.source)


class TaskRunner:
    """Runs the jobs that ``jobs.run_job`` messages name, in one process.

    Made once per worker process, after the fork.

    :param config: the `JobsConfig` (job sections and ``[celery]``).
    :param logger: where the job lines go.
    """

    def __init__(self, config, logger=None):
        self.config = config
        self.logger = logger or logging.getLogger(__name__)
        self.role = None
        self._sections = None
        self._reporters = {}

    def sections(self):
        """The `jobs.sections.Section` s, Celery-enabled ones first, each
        source once (a source served by two sections runs as the first of
        them in that order: a Celery-enabled one before any other).

        A section whose source cannot be found is left out, with one
        WARNING: its jobs cannot run here until the configuration or the
        registration is fixed.
        """
        if self._sections is None:
            sections = []
            for name in self.config.job_section_names:
                try:
                    sections.append(find_section(self.config, name))
                except SectionError as e:
                    self.logger.warning("%s: its jobs cannot run here.", e)
            # Celery-enabled first, before a shared source is kept once:
            # its jobs then run by the section that sends them here, with
            # that section's role and limits.
            sections.sort(
                key=lambda section: not section.settings.celery_dispatch)
            found, seen = [], set()
            for section in sections:
                if section.source not in seen:
                    seen.add(section.source)
                    found.append(section)
            self._sections = found
        return self._sections

    def error_reporter(self, section):
        """The section's `ErrorReporter` (made once per process)."""
        reporter = self._reporters.get(section.name)
        if reporter is None:
            reporter = self._reporters[section.name] = \
                error_reporter_for(section.name, self.config)
        return reporter

    def run(self, job_id, queue):
        """Claim and run job `job_id`, delivered from `queue`.

        Each section's source tries to claim it (Celery-enabled sections
        first, each in its section's database role); the first claim that
        succeeds runs it.

        :return: what happened: ``"ran"`` (an outcome was recorded),
            ``"retry"`` (sent again with a countdown), ``"requeued"``
            (sent to the fallback queue), ``"not due"`` (sent again for
            the rest of its wait), ``"limited"`` (ready, but its
            section's limits held it back: sent again shortly) or
            ``"skipped"`` (no such job, or taken,
            finished or cancelled: nothing to do).
        """
        runner = None
        for section in self.sections():
            runner = self._run_in(section, job_id, queue)
            if runner is not None:
                break
        if runner is not None and runner.requeued:
            fallback = self.config.celery.fallback_queue
            self.logger.info(
                "Job %d passed the soft time limit of queue %s (%s s):"
                " sending it to %s.", job_id, queue,
                self.config.celery.limits(queue)[0], fallback)
            self._send(job_id, fallback)
            return "requeued"
        if runner is not None and runner.completed:
            return "ran"
        # A retry, or a message that came before its job was due: send it
        # again for the time left. Anything else has nothing to do.
        wait = self.seconds_until_due(job_id)
        if runner is None and wait == 0 and any(
                Limits.of(section.settings) for section in self.sections()):
            # Ready, but its section's limits (max_running, per key,
            # rate) held it back: ask again shortly.
            self.logger.info(
                "Job %d is ready but its section's limits hold it back:"
                " sent to %s again in %s s.", job_id, queue, LIMITED_RETRY)
            self._send(job_id, queue, countdown=LIMITED_RETRY)
            return "limited"
        if wait is not None and (runner is not None or wait > 0):
            self.logger.info(
                "Job %d is due in %.1f s: sent to %s again with that"
                " countdown.", job_id, wait, queue)
            self._send(job_id, queue, countdown=wait)
            return "retry" if runner is not None else "not due"
        if runner is None:
            self.logger.info(
                "Job %d is not ready (taken, finished or cancelled):"
                " message ignored.", job_id)
            return "skipped"
        return "ran"

    def _run_in(self, section, job_id, queue):
        """Claim and run the job as `section`'s; return the `JobRunner`
        that ran it, or None when it could not be claimed."""
        settings = section.settings
        if settings.dbuser != self.role:
            set_role(settings.dbuser)
            self.role = settings.dbuser
        fallback = self.config.celery.fallback_queue
        runner = JobRunner.runFromSource(
            _OneJob(section.source, job_id), self.logger,
            self.error_reporter(section), settings=settings, max_jobs=1,
            requeue_error_types=(
                (SoftTimeLimitExceeded,) if fallback and fallback != queue
                else ()))
        transaction.abort()
        return runner if runner.started else None

    def _send(self, job_id, queue, countdown=None):
        try:
            send_jobs([(job_id, queue)], countdown=countdown or None,
                      config=self.config)
        except DispatchError as e:
            self.logger.warning(
                "%s. Job %d stays WAITING in the database; run_jobs.py"
                " --celery-sweep will send it.", e, job_id)

    def seconds_until_due(self, job_id):
        """Seconds until job `job_id` is ready (0.0: now) when it is
        WAITING and unleased; None otherwise. By the database's clock;
        ends the transaction."""
        store = get_store()
        try:
            if not store.find(Job, Job.id == job_id,
                              ready_condition()).is_empty():
                return 0.0
            row = store.execute(Select(
                (Job.status, Job.scheduled_start, UTCNow()),
                where=Job.id == job_id, tables=Job)).get_one()
        finally:
            transaction.abort()
        if row is None or row[1] is None or \
                JobStatus.items[row[0]] is not JobStatus.WAITING:
            return None
        scheduled, now = (UTCDateTime.variable_class(
            value=value, from_db=True).get() for value in row[1:])
        return max(0.0, (scheduled - now).total_seconds())


# The process's runner, made after the fork (or on the first task).
_runner = None
# Its row in the worker table (jobs.presence).
_presence = None
# The pid of the Celery worker's main process (`worker_main`): a stop
# request from `jobs cancel --worker` is a warm shutdown of that worker.
_main_pid = None


def init_process(**ignored):
    """``worker_process_init``: this process's own configuration,
    component registry and database store, and its row in the worker
    table, beaten until it exits."""
    global _runner, _presence
    set_config(None)
    config = get_config()
    register_components(config)
    connect(config.database_uri, config.session_settings,
        config.prepared_statements)
    _runner = TaskRunner(config, logging.getLogger(__name__))
    _presence = Presence("celery", config.job_section_names, config.workers,
                         logger, _warm_shutdown).start()


def _warm_shutdown():
    """A stop request: SIGTERM to the Celery worker (a warm shutdown: the
    running tasks finish, the worker exits)."""
    if _main_pid is None:
        logger.warning("This Celery worker was not started by `jobs"
                       " celery-worker`: stop it with SIGTERM.")
        return
    os.kill(_main_pid, signal.SIGTERM)


def shutdown_process(**ignored):
    """``worker_process_shutdown``: delete the process's row."""
    global _presence
    if _presence is not None:
        _presence.stop()
        _presence = None


def run_job(task, job_id):
    """The ``jobs.run_job`` task: claim and run job `job_id` (see the
    module's docstring); return what happened."""
    if _runner is None:
        init_process()  # a pool without forks (solo, threads)
    delivery = task.request.delivery_info or {}
    queue = delivery.get("routing_key") or \
        _runner.config.celery.default_queue
    return _runner.run(job_id, queue)


def register_task(app):
    """Register ``jobs.run_job`` in the Celery `app`; return the task."""
    task = app.tasks.get(TASK_NAME)
    if task is None:
        task = app.task(name=TASK_NAME, bind=True, acks_late=True,
                        ignore_result=True)(run_job)
    return task


def worker_main(queues, concurrency=1, loglevel="INFO", hostname=None,
                pool=None, config=None):
    """Run a Celery worker on `queues` until it is stopped (SIGTERM: warm
    shutdown, the running jobs finish).

    Late acknowledgement and a prefetch of one come from the app
    (`jobs.celery.dispatch.celery_app`); the queues' time limits travel in each
    message.
    """
    global _main_pid
    _main_pid = os.getpid()
    app = celery_app(config)
    register_task(app)
    signals.worker_process_init.connect(init_process, weak=False)
    signals.worker_process_shutdown.connect(shutdown_process, weak=False)
    argv = ["worker", "--queues", ",".join(queues),
            "--concurrency", str(concurrency), "--loglevel", loglevel,
            "--prefetch-multiplier", "1", "--without-mingle",
            "--without-gossip"]
    if hostname:
        argv += ["--hostname", hostname]
    if pool:
        argv += ["--pool", pool]
    app.worker_main(argv=argv)
