"""`DemoJob`: a job with no context table of its own.

It keeps its type in ``job.base_job_type`` and its data in
``job.base_json_data`` — the pattern for small jobs that are about no
particular application row.
"""

__all__ = ["DemoJob", "TransientError"]

import logging

from zope.interface import implementer, provider

from jobs.database import get_store
from jobs.demo.interfaces import IDemoJobSource
from jobs.errors import NotFoundError
from jobs.interfaces.job import IRunnableJob
from jobs.model.enqueue import create_tableless_job
from jobs.model.job import Job
from jobs.model.runnable import BaseRunnableJob

DEMO_JOB_TYPE = 1000
logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying."""


@implementer(IRunnableJob)
@provider(IDemoJobSource)
class DemoJob(BaseRunnableJob):
    """A demo job: does what its ``action`` says."""

    retry_error_types = (TransientError,)

    def __init__(self, job):
        self.job = job

    def __repr__(self):
        return "<DemoJob %s: %s>" % (
            self.job.base_json_data.get("action"),
            self.job.base_json_data.get("message"))

    @classmethod
    def create(cls, action, message, max_retries=0, **options):
        """See `IDemoJobSource`; `options` are `jobs.model.enqueue`'s
        (delay, scheduled_start, priority, unique_key)."""
        return create_tableless_job(
            cls, DEMO_JOB_TYPE, {"action": action, "message": message},
            max_retries, **options)

    @classmethod
    def jobCondition(cls):
        """See `BaseRunnableJobSource`."""
        return Job.base_job_type == DEMO_JOB_TYPE, []

    @classmethod
    def getJobs(cls, job_ids):
        """See `BaseRunnableJobSource`."""
        jobs = {job.id: cls(job) for job in get_store().find(
            Job, Job.id.is_in(job_ids))}
        return [jobs[job_id] for job_id in job_ids if job_id in jobs]

    @classmethod
    def get(cls, job_id):
        """See `IJobSource`."""
        job = get_store().find(
            Job, Job.id == job_id, Job.base_job_type == DEMO_JOB_TYPE).one()
        if job is None:
            raise NotFoundError("No demo job %s." % job_id)
        return cls(job)

    def getOopsVars(self):
        """See `IRunnableJob`."""
        return super().getOopsVars() + [
            ("action", self.job.base_json_data.get("action"))]

    def getOperationDescription(self):
        """See `IRunnableJob`."""
        return "running a demo job"

    def run(self):
        """See `IRunnableJob`."""
        action = self.job.base_json_data.get("action")
        message = self.job.base_json_data.get("message")
        logger.info("Demo job says: %s", message)
        if action == "retry":
            raise TransientError("the service is busy, try later")
        if action == "fail":
            raise RuntimeError("the demo job failed on purpose")
