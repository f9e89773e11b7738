"""`DerivedJob`: the base of a job family over its own context table.

A context table (say ``foo_job``) has an ``id``, a ``job`` foreign key to
``job.id`` (unique, ``ON DELETE CASCADE``), a ``job_type`` enum column, a
``json_data`` column and the family's own foreign keys. Its Storm class
(``FooJob``) declares ``job_id``, ``job = Reference(job_id, Job.id)``,
``job_type = DBEnum(enum=FooJobType)`` and ``json_data = JSON()``.

The family's base class sets ``context_class = FooJob``; each leaf sets
``class_job_type``, implements ``run()`` and provides its source
interface. `DerivedJob` supplies ``create``-time plumbing, ``iterReady``
and ``get``.
"""

__all__ = ["DerivedJob"]

import inspect

from storm.expr import And

from jobs.database import get_store
from jobs.errors import NotFoundError
from jobs.model.enumeratedsubclass import EnumeratedSubclass
from jobs.model.job import Job
from jobs.model.jsondata import check_json_data
from jobs.model.runnable import BaseRunnableJob


class DerivedJob(BaseRunnableJob, metaclass=EnumeratedSubclass):
    """A runnable job wrapping one row of a context table (``.context``)."""

    context_class = None
    class_job_type = None

    def __init__(self, context):
        self.context = context

    @property
    def job(self):
        """The `IJob` row of this job, loaded when first asked for.

        Held here, not just through the context's reference: Storm keeps
        only weak references to clean objects. A short job whose code
        never asks for its row costs no query for it: the runner records
        its outcome by id and attempt.
        """
        job = self.__dict__.get("_job_row")
        if job is None:
            job = self._job_row = self.context.job
        return job

    @property
    def job_id(self):
        """See `IJob`; read from the context, without loading the row."""
        return self.context.job_id

    @classmethod
    def _create(cls, **context_columns):
        """Create the job row and the context row; return the wrapper.

        The job row's ``max_retries`` is the class's policy. Flushes, so
        the ids exist; leaves the transaction to the caller.

        :raises InvalidJobData: when ``json_data`` cannot be stored, or
            (`JobDataTooLarge`) is larger than `max_json_data_bytes`.
        """
        if context_columns.get("json_data") is not None:
            check_json_data(context_columns["json_data"],
                            cls.max_json_data_bytes)
        max_retries = inspect.getattr_static(cls, "max_retries", 0)
        if not isinstance(max_retries, int):
            max_retries = 0
        store = get_store()
        job = Job(max_retries=max_retries)
        store.add(job)
        context = cls.context_class(
            job=job, job_type=cls.class_job_type, **context_columns)
        store.add(context)
        store.flush()
        created = cls(context)
        cls.after_create(created)
        return created

    @classmethod
    def _contexts(cls, *conditions):
        context_class = cls.context_class
        if cls.class_job_type is not None:
            conditions += (context_class.job_type == cls.class_job_type,)
        return get_store().find(context_class, *conditions)

    @classmethod
    def jobCondition(cls):
        """See `BaseRunnableJobSource`."""
        context_class = cls.context_class
        condition = context_class.job_id == Job.id
        if cls.class_job_type is not None:
            condition = And(condition,
                            context_class.job_type == cls.class_job_type)
        return condition, [context_class]

    @classmethod
    def getJobs(cls, job_ids):
        """See `BaseRunnableJobSource`.

        Loads the context rows in one query; each job row is loaded only
        if something asks for ``job`` (it costs more to load than the
        whole run of a short job).
        """
        if not job_ids:
            return []
        contexts = get_store().find(
            cls.context_class, cls.context_class.job_id.is_in(job_ids))
        by_id = {context.job_id: cls.makeSubclass(context)
                 for context in contexts}
        return [by_id[job_id] for job_id in job_ids if job_id in by_id]

    @classmethod
    def get(cls, job_id):
        """See `IJobSource`."""
        context = cls._contexts(cls.context_class.job_id == job_id).one()
        if context is None:
            raise NotFoundError(
                "No %s with job id %s." % (cls.__name__, job_id))
        return cls.makeSubclass(context)
