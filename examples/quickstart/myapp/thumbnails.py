import logging

from lazr.enum import DBEnumeratedType, DBItem
from storm.locals import Int, Reference, Unicode
from zope.interface import implementer, provider

from jobs.database import DBEnum, get_store
from jobs.errors import NotFoundError
from jobs.interfaces.job import IJobSource, IRunnableJob
from jobs.model import BaseRunnableJob, EnumeratedSubclass, Job

logger = logging.getLogger(__name__)


class ThumbnailJobType(DBEnumeratedType):
    MAKE_THUMBNAIL = DBItem(0, "Make thumbnail")


class ThumbnailJob:
    """The context row: which job makes which thumbnail."""

    __storm_table__ = "thumbnail_job"
    job_id = Int(name="job", primary=True)
    job = Reference(job_id, Job.id)
    job_type = DBEnum(enum=ThumbnailJobType, allow_none=False)
    path = Unicode(allow_none=False)

    def __init__(self, job, job_type, path):
        self.job = job
        self.job_type = job_type
        self.path = path


class IThumbnailJobSource(IJobSource):
    """The source of thumbnail jobs (section [thumbnails])."""


class ThumbnailJobDerived(BaseRunnableJob, metaclass=EnumeratedSubclass):
    """The base of the thumbnail job types."""

    def __init__(self, context):
        self.context = context

    @classmethod
    def create(cls, path):
        context = ThumbnailJob(Job(), cls.class_job_type, path)
        get_store().add(context)
        get_store().flush()
        return cls(context)

    @classmethod
    def iterReady(cls):
        contexts = get_store().find(
            ThumbnailJob, ThumbnailJob.job_type == cls.class_job_type,
            ThumbnailJob.job_id.is_in(Job.ready_jobs))
        return [cls.makeSubclass(context) for context in contexts]

    @classmethod
    def get(cls, job_id):
        context = get_store().find(
            ThumbnailJob, ThumbnailJob.job_id == job_id,
            ThumbnailJob.job_type == cls.class_job_type).one()
        if context is None:
            raise NotFoundError("No thumbnail job %s." % job_id)
        return cls.makeSubclass(context)


@implementer(IRunnableJob)
@provider(IThumbnailJobSource)
class MakeThumbnailJob(ThumbnailJobDerived):
    class_job_type = ThumbnailJobType.MAKE_THUMBNAIL

    def run(self):
        logger.info("Making a thumbnail of %s", self.context.path)


def register(registry):
    registry.registerUtility(MakeThumbnailJob, IThumbnailJobSource)
