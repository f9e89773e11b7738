"""``@task``: a plain function as a job type, enqueued in one line.

::

    from jobs import task

    @task(section="mail", max_retries=3, retry_delay=60)
    def send_welcome(user_id, template="welcome"):
        ...

    send_welcome.delay(42, template="x")      # in the current transaction
    send_welcome.apply_async(args=(42,), delay=30, priority=5,
                             unique_key="welcome-42")
    send_welcome.bulk([(1,), (2,), {"args": (3,), "priority": 9}])

    @task(section="mail", schedule="0 3 * * *")    # a job at 03:00 UTC
    def send_digest():
        ...

and in the configuration, a job section that lists its tasks::

    [mail]
    tasks: myapp.mail.*

A call creates a function job (`jobs.model.function.FunctionJob`): a row
in ``task_job`` holding the function's dotted path and its arguments as
JSON, created in the caller's current transaction (nothing is committed;
an abort leaves no job). Runners run it like any job: the same outcome
table (the task's ``retry_error_types`` are retried, its
``user_error_types`` fail without an OOPS, anything else fails with one),
OOPS reports, progress, cancellation, roles and Celery dispatch.

The allow-list: at start-up, `jobs.registration` imports the modules the
configured ``tasks`` patterns name, and each ``@task`` registers itself
when its module is imported. A section runs only the registered tasks
that match its patterns; a job naming anything else fails with a
`TaskNotAllowed` OOPS, and nothing is imported for it.
"""

from __future__ import annotations

__all__ = [
    "Task",
    "registered_tasks",
    "section_source",
    "task",
]

import functools
import weakref
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import (
    Any,
    Callable,
    Generic,
    Iterable,
    Mapping,
    Optional,
    ParamSpec,
    TypeVar,
    Union,
    overload,
)

from jobs.bounds import (
    LEASE_SECONDS, MAX_RETRIES, RETRY_DELAY, Bound, problem, seconds_of)
from jobs.config import JobSection, JobsConfig, get_config
from jobs.database import get_store
from jobs.errors import (
    ConfigError,
    InvalidJobData,
    NotFoundError,
    ScheduleError,
)
from jobs.model.enqueue import bulk_create, create_job
from jobs.model.calls import Calls
from jobs.model.function import (
    FunctionJob,
    TaskJob,
    section_job_class,
    task_matches,
)
from jobs.model.jsondata import MAX_JSON_DATA_BYTES
from jobs.model.options import enqueue_options, job_ids
from jobs.model.resultof import marked_ids
from jobs.schedule import Cron

P = ParamSpec("P")
R = TypeVar("R")
Seconds = Union[int, float, timedelta]

# {dotted name: Task}: every @task function imported so far.
_registry: dict[str, "Task[Any, Any]"] = {}


def registered_tasks() -> Mapping[str, "Task[Any, Any]"]:
    """``{dotted name: Task}`` of every ``@task`` registered so far
    (read-only)."""
    return MappingProxyType(_registry)


def _checked(name: str, key: str, value: Any, bound: Bound) -> float:
    """`value` (seconds or a timedelta, or a count) in `bound`'s range.

    :raises TypeError: it is not a number (or a timedelta).
    :raises ValueError: it is out of range; both name the task and key.
    """
    seconds = seconds_of(value)
    if seconds is None or (not bound.unit and not isinstance(value, int)):
        raise TypeError("@task %s: %s: %r is not %s." % (
            name, key, value,
            "seconds or a timedelta" if bound.unit else "a whole number"))
    wrong = problem(bound, value)
    if wrong is not None:
        raise ValueError("@task %s: %s: %s" % (name, key, wrong))
    return seconds


class Task(Generic[P, R]):
    """A function registered as a job type by ``@task``.

    Calling it calls the function, here and now. `delay`, `apply_async`
    and `bulk` create jobs that call it later, in a runner.

    :ivar function: the function.
    :ivar name: its dotted path (``module.qualname``): what the job rows
        store and what a section's ``tasks`` patterns match.
    :ivar section: the job section meant to run it, or None.
    :ivar max_retries: attempts after the first, for `retry_error_types`.
    :ivar retry_delay: a `timedelta` between attempts.
    :ivar priority: the default priority of its jobs.
    :ivar lease_seconds: how long a runner's lease on its jobs lasts
        (None: the section's, or 5 minutes).
    :ivar retry_error_types: exceptions that mean "try again later".
    :ivar user_error_types: exceptions that are the user's fault (FAILED,
        no OOPS).
    :ivar database_privileges: ``{table: privileges}`` its code needs,
        for ``jobs db roles``.
    :ivar schedule: the `jobs.schedule.Cron` of its periodic schedule
        (`jobs.scheduler`), or None.
    """

    def __init__(self, function: Callable[P, R], *,
                 section: Optional[str] = None, max_retries: int = 0,
                 retry_delay: Seconds = 600, priority: int = 0,
                 lease_seconds: Optional[Seconds] = None,
                 retry_error_types: tuple[type[BaseException], ...] = (),
                 user_error_types: tuple[type[BaseException], ...] = (),
                 database_privileges: Optional[
                     Mapping[str, Iterable[str]]] = None,
                 max_json_data_bytes: int = MAX_JSON_DATA_BYTES,
                 schedule: Optional[Union[str, Cron]] = None):
        qualname = getattr(function, "__qualname__", "")
        if not callable(function) or "<" in qualname or not qualname:
            raise TypeError(
                "@task needs a function defined at the top level of a"
                " module, which a runner can find by its dotted name; not"
                " %r." % (function,))
        self.function = function
        self.name = "%s.%s" % (function.__module__, qualname)
        if section is not None and not isinstance(section, str):
            raise TypeError("@task %s: section %r is not a section name."
                            % (self.name, section))
        self.section = section
        _checked(self.name, "max_retries", max_retries, MAX_RETRIES)
        self.max_retries = max_retries
        self.retry_delay = timedelta(seconds=_checked(
            self.name, "retry_delay", retry_delay, RETRY_DELAY))
        self.priority = enqueue_options(priority=priority).priority
        self.lease_seconds = (None if lease_seconds is None else _checked(
            self.name, "lease_seconds", lease_seconds, LEASE_SECONDS))
        self.retry_error_types = tuple(retry_error_types)
        self.user_error_types = tuple(user_error_types)
        self.database_privileges = {
            table: set(granted)
            for table, granted in (database_privileges or {}).items()}
        self.max_json_data_bytes = max_json_data_bytes
        if isinstance(schedule, str):
            try:
                schedule = Cron(schedule)
            except ScheduleError as e:
                raise ScheduleError("@task %s: %s" % (self.name, e)) from None
        elif schedule is not None and not isinstance(schedule, Cron):
            raise TypeError("@task %s: schedule %r is not a cron expression"
                            " or a jobs.Cron." % (self.name, schedule))
        self.schedule = schedule
        self._calls = Calls(self.name, function, max_json_data_bytes)
        if schedule is not None:
            try:
                self._calls.check((), None)
            except InvalidJobData as e:
                raise ScheduleError(
                    "@task %s: its schedule calls it without arguments,"
                    " which it needs (%s); give them in a [schedule.NAME]"
                    " section's args and kwargs instead."
                    % (self.name, str(e).rstrip("."))) from None
        self._job_classes: weakref.WeakKeyDictionary[
            JobsConfig, type[FunctionJob]] = weakref.WeakKeyDictionary()
        functools.update_wrapper(self, function)
        _registry[self.name] = self

    def __repr__(self) -> str:
        return "<Task %s>" % self.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> FunctionJob:
        """Create a job that calls the function with these arguments.

        The job is created in the caller's current transaction: it
        exists once that commits, and never if it aborts.

        :return: the new job (a `FunctionJob`).
        :raises InvalidJobData: when the arguments do not fit the
            function's signature or are not JSON.
        :raises ConfigError: when the task's `section` is not a job
            section of the configuration, or does not list the task.
        Flushes; does not commit.
        """
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Iterable[Any] = (),
                    kwargs: Optional[Mapping[str, Any]] = None, *,
                    delay: Optional[Seconds] = None,
                    scheduled_start: Optional[datetime] = None,
                    priority: Optional[int] = None,
                    unique_key: Optional[str] = None,
                    depends_on: Optional[Iterable[Any]] = None,
                    on_dependency_failure: Optional[str] = None,
                    concurrency_key: Optional[str] = None) -> FunctionJob:
        """`delay`, with options.

        :param delay: seconds (or a `timedelta`) before the job is ready,
            by the database's clock.
        :param scheduled_start: or an aware `datetime` when it is ready.
        :param priority: higher runs first (default: the task's).
        :param unique_key: at most one pending job (WAITING, RUNNING,
            SUSPENDED) of this task per key: when one holds the key,
            nothing is created and that job is returned.
        :param depends_on: jobs (or ids) to wait for: the job runs once
            each has COMPLETED. An argument ``jobs.result_of(job)`` is
            replaced by `job`'s result when the job runs, and adds `job`
            to `depends_on`.
        :param on_dependency_failure: ``"cancel"`` (default: when a job
            it depends on fails or is cancelled, so is this one) or
            ``"run"``.
        :param concurrency_key: at most the section's
            ``max_running_per_key`` jobs with this key run at once.
        :return: the new job, or the pending one holding `unique_key`.
        :raises InvalidJobOption: for a bad option, naming it.
        :raises InvalidJobData: see `delay`.
        :raises ConfigError: see `delay`.
        Flushes; does not commit.
        """
        arguments, keywords = self._calls.check(args, kwargs)
        options = enqueue_options(
            delay, scheduled_start, priority, unique_key, self.priority,
            depends_on=list(job_ids(depends_on))
            + sorted(marked_ids(arguments, keywords)),
            on_dependency_failure=on_dependency_failure,
            concurrency_key=concurrency_key)
        self._calls.encoded(arguments, keywords)
        job_class = self.job_class()
        store = get_store()
        job, created = create_job(store, FunctionJob.job_kind(self.name),
                                  options, self.max_retries)
        if not created:
            return job_class.get(job.id)
        context = TaskJob(job, self.name, arguments, keywords)
        store.add(context)
        store.flush()
        made = job_class(context)
        job_class.after_create(made)
        return made

    def bulk(self, calls: Iterable[Union[Iterable[Any], Mapping[str, Any]]],
             *, delay: Optional[Seconds] = None,
             scheduled_start: Optional[datetime] = None,
             priority: Optional[int] = None) -> list[int]:
        """Create one job per call, in multi-row INSERTs.

        :param calls: each the positional arguments (a tuple or list), or
            a mapping of `apply_async`'s arguments (``args``, ``kwargs``,
            ``delay``, ``scheduled_start``, ``priority``, ``unique_key``,
            ``depends_on``, ``on_dependency_failure``,
            ``concurrency_key``).
        :param delay: and `scheduled_start`, `priority`: for every call
            that does not say.
        :return: the job ids, in order (for a taken unique key, the
            pending job's). The jobs are not loaded.
        :raises InvalidJobOption: for a bad option, naming it.
        :raises InvalidJobData: see `delay`.
        Does not commit.
        """
        rows = self._calls.rows(calls)
        return bulk_create(
            self.job_class(), rows,
            dict(delay=delay, scheduled_start=scheduled_start,
                 priority=priority),
            kind=FunctionJob.job_kind(self.name),
            max_retries=self.max_retries, fixed={"task": self.name},
            default_priority=self.priority)

    def get(self, job_id: int) -> FunctionJob:
        """This task's job `job_id`, read now (its ``status``,
        ``result``, ``dependency_results()``...).

        :raises NotFoundError: when there is no such job of this task.
        """
        job = self.job_class().get(job_id)
        if job.context.task != self.name:
            raise NotFoundError("Job %d is not a job of task %s."
                                % (job_id, self.name))
        return job

    def job_class(self, config: Optional[JobsConfig] = None
                  ) -> type[FunctionJob]:
        """The class of this task's new jobs: the job class of the
        section that runs it (the task's `section`, else the first job
        section whose ``tasks`` match it), or `FunctionJob` when none
        does. Sending jobs to Celery is the section's business.

        :raises ConfigError: when `section` is not a job section of
            `config` (default: the current one) or does not list the task.
        """
        config = config or get_config()
        found = self._job_classes.get(config)
        if found is None:
            found = self._job_classes[config] = self._find_job_class(config)
        return found

    def _find_job_class(self, config: JobsConfig) -> type[FunctionJob]:
        if self.section is not None:
            settings = config.job_section(self.section)
            if not task_matches(self.name, settings.tasks):
                raise ConfigError(
                    "Task %s: section %s of %s does not run it (its tasks:"
                    " %s)." % (self.name, self.section, config.path,
                               " ".join(settings.tasks) or "none; it sets"
                               " source_interface"))
            return section_source(config, settings)
        for name in config.job_section_names:
            settings = config.job_section(name)
            if task_matches(self.name, settings.tasks):
                return section_source(config, settings)
        return FunctionJob


@overload
def task(function: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(*, section: Optional[str] = ..., max_retries: int = ...,
         retry_delay: Seconds = ..., priority: int = ...,
         lease_seconds: Optional[Seconds] = ...,
         retry_error_types: tuple[type[BaseException], ...] = ...,
         user_error_types: tuple[type[BaseException], ...] = ...,
         database_privileges: Optional[Mapping[str, Iterable[str]]] = ...,
         max_json_data_bytes: int = ...,
         schedule: Optional[Union[str, Cron]] = ...,
         ) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(function: Optional[Callable[P, R]] = None, **settings: Any) -> Any:
    """Register `function` as a job type: ``@task`` or ``@task(...)``.

    :param settings: `Task`'s: ``section``, ``max_retries``,
        ``retry_delay`` (seconds or timedelta), ``priority``,
        ``lease_seconds``, ``retry_error_types``, ``user_error_types``,
        ``database_privileges``, ``max_json_data_bytes``, ``schedule``
        (a cron expression, or a `jobs.Cron` with its time zone and
        catch-up policy: a job of the task, called without arguments, at
        each of its times; see `jobs.scheduler`).
    :return: the `Task` (a callable wrapping `function`).
    :raises TypeError: for a function that is not at a module's top
        level, or a setting of the wrong type.
    :raises ValueError: for a setting out of range (`ScheduleError`
        for a malformed schedule).
    """
    if function is not None:
        return Task(function, **settings)

    def decorate(function: Callable[P, R]) -> Task[P, R]:
        return Task(function, **settings)

    return decorate


def section_source(config: JobsConfig, settings: JobSection
                   ) -> type[FunctionJob]:
    """The source (a `FunctionJob` class) of a job section that lists
    ``tasks``: its allow-list is the registered tasks they match."""
    return section_job_class(settings.name, settings.tasks, _registry)
