"""Sending jobs to Celery: the app built from ``[celery]`` and the
``jobs.run_job(job_id)`` messages.

Celery carries only "job N is ready"; the database stays the source of
truth. A message is sent after the job's transaction commits
(`run_on_commit`), again by a worker for a retry or a soft time limit, and
again by the sweep for a job that no worker claimed in time. Every message
names its queue's time limits explicitly: Celery 5.7 copies the sending
task's limits into a message that names none, which would give a job
moved to the slow queue the fast queue's limits again.

Dispatch is a subscriber: `register` (called by
`jobs.registration.register_components` when a section says
``celery_dispatch: true``) registers a handler of `IJobCreatedEvent` and
the `IJobDispatcher` utility, so that the model never imports Celery.
Celery itself is imported only when a message is sent.

The worker side is `jobs.celery.task`; the lost-message sweep
`jobs.celery.sweep`.
"""

__all__ = [
    "CeleryDispatcher",
    "TASK_NAME",
    "celery_app",
    "celery_section",
    "dispatch_created",
    "dispatches_to_celery",
    "queue_of",
    "register",
    "run_on_commit",
    "run_on_commit_if_celery",
    "send_jobs",
]

import logging
import weakref

import transaction
from storm.store import Store
from zope.dottedname.resolve import resolve
from zope.interface import implementer

from jobs.config import get_config
from jobs.errors import ConfigError, DispatchError, NotFoundError, SectionError
from jobs.interfaces.job import (
    IJobCreatedEvent,
    IJobDispatcher,
    IJobsUnblockedEvent,
)
from jobs.sections import find_section

TASK_NAME = "jobs.run_job"

logger = logging.getLogger(__name__)

# One Celery app per broker URL, made on first use in each process.
_apps = {}
# config -> {source: the name of its Celery-enabled job section, or None}
_sections = weakref.WeakKeyDictionary()


def celery_app(config=None):
    """Return the Celery app for `config`'s ``[celery]`` (default: the
    current configuration).

    Late acknowledgement (a message is acknowledged once its job has run,
    so a worker that dies loses nothing), one message prefetched per
    worker process (a long job does not hold others hostage), no results
    (the outcome is in the database).

    :raises ConfigError: when ``[celery]`` is malformed.
    """
    from celery import Celery
    settings = (config or get_config()).celery
    key = (settings.broker_url, settings.default_queue)
    app = _apps.get(key)
    if app is None:
        app = Celery("jobs", broker=settings.broker_url, set_as_current=False)
        app.conf.update(
            task_acks_late=True,
            worker_prefetch_multiplier=1,
            task_default_queue=settings.default_queue,
            task_ignore_result=True,
            task_store_errors_even_if_ignored=False,
            broker_connection_retry_on_startup=True,
            # A broker that is down must not stall the application's
            # commit for long: the sweep sends the job later.
            broker_connection_timeout=2,
            worker_hijack_root_logger=True,
            worker_redirect_stdouts=False,
        )
        _apps[key] = app
    return app


def celery_section(source, config=None):
    """Return the name of the job section that sends `source`'s jobs to
    Celery: the first whose ``celery_dispatch`` is true and whose
    ``source_interface`` `source` provides; None when there is none.

    :raises ConfigError: when such a section's source_interface cannot be
        imported.
    """
    config = config or get_config()
    known = _sections.setdefault(config, {})
    try:
        return known[source]
    except KeyError:
        pass
    found = None
    for name in config.job_section_names:
        settings = config.job_section(name)
        if not settings.celery_dispatch:
            continue
        if settings.tasks:  # @task functions: the section's own class
            if getattr(source, "section", None) == name:
                found = name
                break
            continue
        try:
            interface = resolve(settings.source_interface)
        except (ImportError, AttributeError, ValueError) as e:
            raise ConfigError("Section %s: cannot import source_interface"
                              " %s: %s" % (name, settings.source_interface,
                                           e)) from None
        if interface.providedBy(source):
            found = name
            break
    known[source] = found
    return found


def dispatches_to_celery(source):
    """True when `source`'s new jobs are sent to Celery on commit."""
    return celery_section(source) is not None


def queue_of(job, config=None):
    """The queue `job` is sent to: its own `task_queue`, else its
    section's, else ``[celery] default_queue``."""
    if job.task_queue:
        return job.task_queue
    config = config or get_config()
    name = celery_section(type(job), config)
    if name is not None:
        queue = config.job_section(name).task_queue
        if queue:
            return queue
    return config.celery.default_queue


class _PendingMessages:
    """The jobs one transaction sends to Celery if it commits.

    One after-commit hook per transaction: its jobs go out through one
    broker connection, and a broker that is down costs one WARNING.
    """

    def __init__(self):
        self.messages = []  # (job_id, queue)

    def __call__(self, committed):
        if not committed or not self.messages:
            return
        try:
            send_jobs(self.messages)
        except DispatchError as e:
            logger.warning(
                "%s. The job(s) stay WAITING in the database; run_jobs.py"
                " --celery-sweep will send them: %s", e,
                ", ".join(str(job_id) for job_id, _ in self.messages))


def run_on_commit(job):
    """Send `job` to Celery when the current transaction commits.

    See `IRunnableJob.celeryRunOnCommit`.
    """
    if job.job.id is None:
        Store.of(job.job).flush()
    job_id = job.job.id
    txn = transaction.get()
    try:
        pending = txn.data(_PendingMessages)
    except KeyError:
        pending = _PendingMessages()
        txn.set_data(_PendingMessages, pending)
        txn.addAfterCommitHook(pending)
    pending.messages.append((job_id, queue_of(job)))


@implementer(IJobDispatcher)
class CeleryDispatcher:
    """See `IJobDispatcher`: sends jobs to Celery after commit."""

    def runOnCommit(self, job):
        """See `IJobDispatcher`."""
        run_on_commit(job)


def dispatch_created(event):
    """`IJobCreatedEvent` handler: a new job of a section that says
    ``celery_dispatch: true`` is sent when its transaction commits."""
    job = event.object
    if dispatches_to_celery(type(job)):
        run_on_commit(job)


def dispatch_unblocked(event):
    """`IJobsUnblockedEvent` handler: jobs whose dependencies completed
    are sent, once that commits, if their sections dispatch to Celery."""
    for job_id in event.job_ids:
        run_on_commit_if_celery(job_id)


def register(registry):
    """Register Celery dispatch in `registry` (a component registry)."""
    registry.registerUtility(CeleryDispatcher(), IJobDispatcher)
    registry.registerHandler(dispatch_created, (IJobCreatedEvent,))
    registry.registerHandler(dispatch_unblocked, (IJobsUnblockedEvent,))


def run_on_commit_if_celery(job_id, config=None):
    """Send job `job_id` to Celery on commit if it belongs to a section
    with ``celery_dispatch: true`` (an operator's ``jobs retry`` or
    ``jobs resume`` made it WAITING again).

    :return: True when a message will be sent on commit.
    """
    config = config or get_config()
    for name in config.job_section_names:
        section = config.job_section(name)
        if not section.celery_dispatch:
            continue
        try:
            source = find_section(config, name).source
        except SectionError:
            continue  # reported where the section's jobs are run
        try:
            job = source.get(job_id)
        except NotFoundError:
            continue
        run_on_commit(job)
        return True
    return False


def send_jobs(messages, countdown=None, config=None):
    """Send ``jobs.run_job(job_id)`` for each ``(job_id, queue)``.

    Each message carries its queue's soft and hard time limits. One broker
    connection serves them all; each send tries ``[celery]
    publish_retries`` more times before giving up.

    :param countdown: seconds before a worker may start the jobs (None:
        at once).
    :raises DispatchError: when the broker cannot be reached; messages
        before the failure may have been sent.
    """
    config = config or get_config()
    settings = config.celery
    app = celery_app(config)
    policy = {"max_retries": settings.publish_retries, "interval_start": 0,
              "interval_step": 0.2, "interval_max": 1}
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for job_id, queue in messages:
                soft, hard = settings.limits(queue)
                app.send_task(
                    TASK_NAME, args=(job_id,), queue=queue,
                    countdown=countdown, soft_time_limit=soft,
                    time_limit=hard, producer=producer, retry=True,
                    retry_policy=policy)
                sent += 1
    except Exception as e:
        # Whatever the transport raises (kombu, amqp, redis, socket):
        # the caller's commit has happened and must stand.
        raise DispatchError(
            "Could not send %d of %d job(s) to Celery at %s: %s" % (
                len(messages) - sent, len(messages),
                _safe_url(app), " ".join(str(e).split())
                or type(e).__name__)) from e
    logger.debug("Sent %d job(s) to Celery.", sent)
    return sent


def _safe_url(app):
    return app.connection_for_write().as_uri()
