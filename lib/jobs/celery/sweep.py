"""The lost-message sweep: send again the jobs no Celery worker claimed.

``run_jobs.py --celery-sweep SECTION`` (from cron) runs it. A message can
be lost (a broker restart, a commit while the broker was down, a job
inserted by SQL rather than ``create()``), and a Celery worker killed by
its hard time limit leaves a RUNNING job whose lease then expires: every
job of the section that has been ready for more than its
``celery_sweep_grace`` seconds is sent again. The worker that receives it
claims it with the same fenced claim as every runner, so a duplicate does
nothing; an orphan is taken over as a new attempt, or failed with a
`LostRunner` OOPS when no attempts are left (`jobs.outcome.decide_lost`).
"""

__all__ = ["CelerySweep", "overdue_job_ids"]

import logging

import transaction
from storm.expr import Or
from zope.interface import implementer

from jobs.celery.dispatch import queue_of, send_jobs
from jobs.config import get_config
from jobs.database import UTCNow, get_store
from jobs.interfaces.runner import IJobRunner
from jobs.model.job import Job, ready_condition
from jobs.claiming import context_of, load_jobs, loads_by_id


def overdue_job_ids(source, grace):
    """The ids of `source`'s ready jobs that have been ready for more than
    `grace` seconds: created, due, queued again and (orphans) lease
    expired all that long ago. Read-only.
    """
    try:
        condition, tables = source.jobCondition()
    except (AttributeError, NotImplementedError):
        # A source with only iterReady: its ready jobs, by id.
        condition = Job.id.is_in([job.job_id for job in source.iterReady()])
        tables = []
    cutoff = UTCNow(-grace)

    def before(column):
        return Or(column == None, column < cutoff)  # noqa: E711

    return list(get_store().using(Job, *tables).find(
        Job.id, condition, ready_condition(), Job.date_created < cutoff,
        before(Job.scheduled_start), before(Job.date_finished),
        before(Job.lease_expires)).order_by(Job.id))


@implementer(IJobRunner)
class CelerySweep:
    """Runs no job: sends a section's overdue jobs to Celery again.

    Provides `IJobRunner` like every back-end, so the cron script calls it
    the same way; `started` is the number of jobs sent.
    """

    completed_jobs = incomplete_jobs = oops_ids = ()
    budget_reached = False

    def __init__(self, source, logger=None, settings=None, config=None,
                 chunk=500):
        self.source = source
        self.logger = logger or logging.getLogger(__name__)
        self.settings = settings
        self.config = config or get_config()
        self.chunk = chunk
        self.started = 0
        self.completed = {}
        self.incomplete = {}

    @classmethod
    def runFromSource(cls, source, logger=None, error_reporter=None,
                      settings=None, config=None, **ignored):
        """See `IJobRunner`.

        :raises DispatchError: when the broker cannot be reached.
        """
        sweep = cls(source, logger, settings, config)
        with context_of(source):
            sweep.runAll()
        return sweep

    def runAll(self):
        """Send every overdue job to its queue; leaves no transaction."""
        grace = self.settings.celery_sweep_grace
        ids = overdue_job_ids(self.source, grace)
        transaction.abort()
        for start in range(0, len(ids), self.chunk):
            jobs = self._load(ids[start:start + self.chunk])
            messages = [(job.job_id, queue_of(job, self.config))
                        for job in jobs]
            transaction.abort()
            self.started += send_jobs(messages, config=self.config)
        self.logger.info(
            "Sent %d %s jobs ready for more than %s s to Celery again.",
            self.started, self.settings.name, grace)
        return self.started

    def _load(self, job_ids):
        if loads_by_id(self.source):
            return load_jobs(self.source, job_ids)
        wanted = set(job_ids)
        return [job for job in self.source.iterReady()
                if job.job_id in wanted]

    def runJob(self, job):
        """See `IJobRunner`: a sweep runs no job."""
        raise NotImplementedError("The Celery sweep runs no job.")

    def log_summary(self, logger=None):
        """Nothing to add: `runAll` logged what it sent."""
