"""Celery workers: the ``jobs.run_job`` task, the worker command and the
lost-message sweep.

A message says only "job N is ready"; the database decides. The task
claims the job with the same atomic, fenced claim as every runner
(`IJobSource.claimJob`, tried by each section's source, Celery-enabled
sections first: a duplicate or late message finds the job taken, finished
or not due, and does nothing) and runs it through `BatchRunner` and `JobRunner`: the same
outcome table, OOPS reports and log lines as ``run_jobs.py``. Then:

- a retry (WAITING until ``scheduled_start``) is sent again with the
  delay as the message's countdown. A message that arrives before its job
  is due is sent again for the rest of the wait: ``scheduled_start`` in
  the database decides, never the countdown;
- a job whose soft time limit expired is given back (its work rolled
  back, WAITING, the attempt counted) and sent to ``[celery]
  fallback_queue``, with that queue's own limits. In the fallback queue
  the soft limit is an ordinary failure (FAILED, OOPS).

A claimed job's lease outlasts its queue's hard time limit, so no other
runner takes a job a Celery worker may still be running; a worker killed
by the hard limit leaves a RUNNING job whose lease expires, which the
sweep sends again and the next claim takes over as a new attempt.

Each worker process opens its own store after the fork
(``worker_process_init``): a database connection must never cross a fork.
"""

__all__ = [
    "TaskRunner",
    "overdue_job_ids",
    "register_task",
    "sweep",
    "worker_main",
]

import logging

import transaction
from celery import signals
from celery.exceptions import SoftTimeLimitExceeded
from storm.expr import Or, Select

from jobs.config import get_config, set_config
from jobs.database import UTCDateTime, UTCNow, connect, get_store, set_role
from jobs.dispatch import TASK_NAME, celery_app, queue_of, send_jobs
from jobs.errors import DispatchError
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job, ready_condition
from jobs.registration import register_components
from jobs.runner import (
    SectionError,
    default_error_reporter,
    find_section_source,
)
from jobs.runners.batch import BatchRunner

# Seconds a Celery claim's lease outlasts its queue's hard time limit.
LEASE_MARGIN = 60

logger = logging.getLogger(__name__)


class _OneJob:
    """`source` narrowed to the one job a message names (for BatchRunner)."""

    def __init__(self, source, job_id):
        self.source = source
        self.job_id = job_id

    def claimReady(self, limit, lease_duration=None):
        return self.source.claimJob(self.job_id, lease_duration)

    def iterLost(self):
        # Orphans with no attempts left are the sweep's (a cron run's).
        return []


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
        """``[(JobSection, source)]``: Celery-enabled sections first, each
        source once (a source served by two sections runs as the first).

        A section whose source cannot be found is left out, with one
        WARNING: its jobs cannot run here until the configuration or the
        registration is fixed.
        """
        if self._sections is None:
            config = self.config
            settings = [config.job_section(name)
                        for name in config.job_section_names]
            settings.sort(key=lambda section: not section.celery_dispatch)
            found, seen = [], set()
            for section in settings:
                try:
                    source = find_section_source(
                        config, section.name, section.source_interface)
                except SectionError as e:
                    self.logger.warning("%s: its jobs cannot run here.", e)
                    continue
                if source not in seen:
                    seen.add(source)
                    found.append((section, source))
            self._sections = found
        return self._sections

    def lease_seconds(self, section, source, hard_limit):
        """The lease of a claim: the section's (or the job class's), and
        at least the queue's hard time limit plus `LEASE_MARGIN`."""
        lease = section.lease_seconds or \
            source.lease_duration.total_seconds()
        if hard_limit:
            lease = max(lease, hard_limit + LEASE_MARGIN)
        return lease

    def error_reporter(self, section):
        """The section's `ErrorReporter` (made once per process)."""
        reporter = self._reporters.get(section.name)
        if reporter is None:
            reporter = self._reporters[section.name] = \
                default_error_reporter(section.name)
        return reporter

    def run(self, job_id, queue):
        """Claim and run job `job_id`, delivered from `queue`.

        Each section's source tries to claim it (Celery-enabled sections
        first, each in its section's database role); the first claim that
        succeeds runs it.

        :return: what happened: ``"ran"`` (an outcome was recorded),
            ``"retry"`` (sent again with a countdown), ``"requeued"``
            (sent to the fallback queue), ``"not due"`` (sent again for
            the rest of its wait) or ``"skipped"`` (no such job, or taken,
            finished or cancelled: nothing to do).
        """
        runner = None
        for section, source in self.sections():
            runner = self._run_in(section, source, job_id, queue)
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
        if runner is not None and runner.completed_jobs:
            return "ran"
        # A retry, or a message that came before its job was due: send it
        # again for the time left. Anything else has nothing to do.
        wait = self.seconds_until_due(job_id)
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

    def _run_in(self, section, source, job_id, queue):
        """Claim and run the job as `source`'s; return the `JobRunner` that
        ran it, or None when it could not be claimed."""
        if section.dbuser != self.role:
            set_role(section.dbuser)
            self.role = section.dbuser
        settings = self.config.celery
        fallback = settings.fallback_queue
        batch = BatchRunner(
            _OneJob(source, job_id), self.logger,
            self.error_reporter(section), batch_size=1, max_jobs=1,
            lease_duration=self.lease_seconds(
                section, source, settings.limits(queue)[1]),
            log_level=section.log_level,
            log_tail_chars=section.log_tail_chars,
            requeue_error_types=(
                (SoftTimeLimitExceeded,) if fallback and fallback != queue
                else ()))
        with source.contextManager():
            started = batch.run()
        transaction.abort()
        return batch.runner if started else None

    def _send(self, job_id, queue, countdown=None):
        try:
            send_jobs([(job_id, queue)], countdown=countdown or None,
                      config=self.config)
        except DispatchError as e:
            self.logger.warning(
                "%s. Job %d stays WAITING in the database; run_jobs.py"
                " --celery-sweep will send it.", e, job_id)

    def seconds_until_due(self, job_id):
        """Seconds until job `job_id` is due (0.0: now) when it is WAITING
        and unleased; None otherwise. By the database's clock; ends the
        transaction."""
        row = get_store().execute(Select(
            (Job.status, Job.scheduled_start, Job.lease_expires, UTCNow()),
            where=Job.id == job_id, tables=Job)).get_one()
        transaction.abort()
        if row is None or JobStatus.items[row[0]] is not JobStatus.WAITING:
            return None
        scheduled, lease, now = (
            None if value is None else UTCDateTime.variable_class(
                value=value, from_db=True).get() for value in row[1:])
        if lease is not None and lease > now:
            return None
        if scheduled is None:
            return 0.0
        return max(0.0, (scheduled - now).total_seconds())


def overdue_job_ids(source, grace):
    """The ids of `source`'s ready jobs that have been ready for more than
    `grace` seconds: created, due, queued again and (orphans) lease
    expired all that long ago. Read-only.
    """
    condition, tables = source.jobCondition()
    cutoff = UTCNow(-grace)

    def before(column):
        return Or(column == None, column < cutoff)  # noqa: E711

    return list(get_store().using(Job, *tables).find(
        Job.id, condition, ready_condition(), Job.date_created < cutoff,
        before(Job.scheduled_start), before(Job.date_finished),
        before(Job.lease_expires)).order_by(Job.id))


def sweep(source, section, logger, error_reporter, config=None,
          chunk=500):
    """Send again the jobs of `source` that no worker claimed in time.

    First fails the orphans with no attempts left (a `LostRunner` OOPS,
    as a cron run does); then sends ``jobs.run_job`` for every job ready
    for more than the section's ``celery_sweep_grace`` seconds, to its own
    queue. Commits the failures; leaves no transaction open.

    :return: the number of jobs sent.
    :raises DispatchError: when the broker cannot be reached.
    """
    config = config or get_config()
    BatchRunner(source, logger, error_reporter).fail_lost()
    ids = overdue_job_ids(source, section.celery_sweep_grace)
    transaction.abort()
    sent = 0
    for start in range(0, len(ids), chunk):
        jobs = source.getJobs(ids[start:start + chunk])
        messages = [(job.job.id, queue_of(job, config)) for job in jobs]
        transaction.abort()
        sent += send_jobs(messages, config=config)
    logger.info(
        "Sent %d %s jobs ready for more than %s s to Celery again.",
        sent, section.name, section.celery_sweep_grace)
    return sent


# The process's runner, made after the fork (or on the first task).
_runner = None


def init_process(**ignored):
    """``worker_process_init``: this process's own configuration,
    component registry and database store."""
    global _runner
    set_config(None)
    config = get_config()
    register_components(config)
    connect(config.database_uri)
    _runner = TaskRunner(config, logging.getLogger(__name__))


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
    (`jobs.dispatch.celery_app`); the queues' time limits travel in each
    message.
    """
    app = celery_app(config)
    register_task(app)
    signals.worker_process_init.connect(init_process, weak=False)
    argv = ["worker", "--queues", ",".join(queues),
            "--concurrency", str(concurrency), "--loglevel", loglevel,
            "--prefetch-multiplier", "1", "--without-mingle",
            "--without-gossip"]
    if hostname:
        argv += ["--hostname", hostname]
    if pool:
        argv += ["--pool", pool]
    app.worker_main(argv=argv)
