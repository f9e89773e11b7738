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

from __future__ import annotations

__all__ = ["DerivedJob"]

import inspect
from datetime import datetime, timedelta
from typing import Any, Iterable, Optional, Sequence, Union

from storm.expr import And

from jobs.database import get_store, like_escape
from jobs.errors import NotFoundError
from jobs.model.enqueue import bulk_create, create_job
from jobs.model.options import enqueue_options
from jobs.model.enumeratedsubclass import EnumeratedSubclass
from jobs.model.job import Job
from jobs.model.jsondata import check_json_data
from jobs.model.lean import ContextJoin, load_contexts
from jobs.model.runnable import BaseRunnableJob


class DerivedJob(BaseRunnableJob, metaclass=EnumeratedSubclass):
    """A runnable job wrapping one row of a context table (``.context``)."""

    context_class: Any = None
    class_job_type: Any = None

    def __init__(self, context: Any):
        self.context = context

    @property
    def job(self) -> Any:
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

    @job.setter
    def job(self, row: Any) -> None:
        self.__dict__["_job_row"] = row

    @property
    def job_id(self) -> int:
        """See `IJob`; read from the context, without loading the row."""
        return self.context.job_id

    @classmethod
    def job_kind(cls) -> str:
        """This job type's ``job.kind``: ``<context table>:<job_type>``."""
        table = cls.context_class.__storm_table__
        if cls.class_job_type is None:
            return table
        return "%s:%d" % (table, cls.class_job_type.value)

    @classmethod
    def jobKindPatterns(cls) -> list[str]:
        """The ``job.kind`` of this source's jobs, as LIKE patterns (row
        security, `jobs.roles`): its job type's, or every job type's of
        its context table."""
        if cls.class_job_type is None:
            table = like_escape(cls.context_class.__storm_table__)
            return [table, table + ":%"]
        return [like_escape(cls.job_kind())]

    @classmethod
    def _max_retries(cls) -> int:
        """The class's ``max_retries`` policy, written into each new row."""
        max_retries = inspect.getattr_static(cls, "max_retries", 0)
        return max_retries if isinstance(max_retries, int) else 0

    @classmethod
    def _create(cls, delay: Union[None, float, timedelta] = None,
                scheduled_start: Optional[datetime] = None,
                priority: Optional[int] = None,
                unique_key: Optional[str] = None,
                depends_on: Optional[Iterable[Any]] = None,
                on_dependency_failure: Optional[str] = None,
                concurrency_key: Optional[str] = None,
                **context_columns: Any) -> Any:
        """Create the job row and the context row; return the wrapper.

        The job row's ``max_retries`` is the class's policy. Flushes, so
        the ids exist; leaves the transaction to the caller.

        :param delay: seconds or a timedelta before the job is ready.
        :param scheduled_start: or an aware datetime when it is ready.
        :param priority: higher runs first (default 0).
        :param unique_key: at most one pending job of this type per key:
            when one holds it, nothing is created and that job is
            returned (see `jobs.model.enqueue`).
        :param depends_on: jobs (or job ids) to wait for: the job runs
            once each has COMPLETED (`jobs.model.dependencies`).
        :param on_dependency_failure: ``"cancel"`` (default) or ``"run"``.
        :param concurrency_key: at most the section's
            ``max_running_per_key`` jobs with this key run at once.
        :raises InvalidJobOption: for a bad option (naming it).
        :raises InvalidJobData: when ``json_data`` cannot be stored, or
            (`JobDataTooLarge`) is larger than `max_json_data_bytes`.
        """
        options = enqueue_options(
            delay, scheduled_start, priority, unique_key,
            depends_on=depends_on,
            on_dependency_failure=on_dependency_failure,
            concurrency_key=concurrency_key)
        if context_columns.get("json_data") is not None:
            check_json_data(context_columns["json_data"],
                            cls.max_json_data_bytes)
        store = get_store()
        job, created = create_job(store, cls.job_kind(), options,
                                  cls._max_retries())
        if not created:
            return cls.get(job.id)
        context = cls._new_context(job, context_columns)
        store.add(context)
        store.flush()
        made = cls(context)
        cls.after_create(made)
        return made

    @classmethod
    def _new_context(cls, job: Any, columns: dict[str, Any]) -> Any:
        """A new context row for `job`: made by the context class's own
        ``__init__`` when it has one, else (a plain Storm class) by
        setting the columns."""
        context_class = cls.context_class
        if context_class.__init__ is not object.__init__:
            return context_class(job=job, job_type=cls.class_job_type,
                                 **columns)
        columns = dict(columns, job=job)
        if cls.class_job_type is not None:
            columns["job_type"] = cls.class_job_type
        context = context_class()
        for name, value in columns.items():
            setattr(context, name, value)
        return context

    @classmethod
    def createMany(cls, rows: Iterable[dict[str, Any]],
                   delay: Union[None, float, timedelta] = None,
                   scheduled_start: Optional[datetime] = None,
                   priority: Optional[int] = None,
                   depends_on: Optional[Iterable[Any]] = None,
                   on_dependency_failure: Optional[str] = None,
                   concurrency_key: Optional[str] = None) -> list[int]:
        """Create one job per entry of `rows`, in multi-row INSERTs.

        :param rows: dicts of context columns (as ``_create`` takes them;
            a reference such as ``foo`` may be given as the object, for
            its ``foo_id`` column), each of which may also hold
            ``delay``, ``scheduled_start``, ``priority``, ``unique_key``,
            ``depends_on``, ``on_dependency_failure`` and
            ``concurrency_key`` for its own job.
        :param delay: and `scheduled_start`, `priority`, `depends_on`,
            `on_dependency_failure`, `concurrency_key`: for every row
            that does not say.
        :return: the job ids, in order (for a row whose unique key was
            taken, the pending job's). Jobs are not loaded; `get` loads
            one. Leaves the transaction to the caller.
        :raises InvalidJobOption: for a bad option (naming it).
        :raises InvalidJobData: for ``json_data`` that cannot be stored.
        """
        return bulk_create(cls, rows, dict(
            delay=delay, scheduled_start=scheduled_start, priority=priority,
            depends_on=depends_on,
            on_dependency_failure=on_dependency_failure,
            concurrency_key=concurrency_key))

    @classmethod
    def _contexts(cls, *conditions: Any) -> Any:
        context_class = cls.context_class
        if cls.class_job_type is not None:
            conditions += (context_class.job_type == cls.class_job_type,)
        return get_store().find(context_class, *conditions)

    @classmethod
    def jobCondition(cls) -> tuple[Any, list[Any]]:
        """See `BaseRunnableJobSource`."""
        def build():
            context_class = cls.context_class
            condition = context_class.job_id == Job.id
            if cls.class_job_type is not None:
                condition = And(condition,
                                context_class.job_type == cls.class_job_type)
            return condition, [context_class]
        return cls._once(build)

    @classmethod
    def getJobs(cls, job_ids: Sequence[int]) -> list[Any]:
        """See `BaseRunnableJobSource`.

        Loads the context rows in one query, as lean contexts
        (`jobs.model.lean`): a context becomes a Storm object only when
        the job's code needs the ORM; each job row is loaded only if
        something asks for ``job`` (it costs more to load than the whole
        run of a short job).
        """
        if not job_ids:
            return []
        by_id = load_contexts(cls.context_class, job_ids)
        return [cls.makeSubclass(by_id[job_id]) for job_id in job_ids
                if job_id in by_id]

    @classmethod
    def claimLoad(cls) -> Any:
        """See `BaseRunnableJob`: the claimed jobs' context rows, as
        lean contexts (`jobs.model.lean.ContextJoin`)."""
        return ContextJoin(cls.context_class, cls.makeSubclass)

    @classmethod
    def get(cls, job_id: int) -> Any:
        """See `IJobSource`."""
        context = cls._contexts(cls.context_class.job_id == job_id).one()
        if context is None:
            raise NotFoundError(
                "No %s with job id %s." % (cls.__name__, job_id))
        return cls.makeSubclass(context)
