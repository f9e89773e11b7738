"""`FunctionJob`: a job that calls a registered ``@task`` function
(`jobs.tasks`) with JSON arguments.

Every function job has a row in ``task_job`` (its `TaskJob` context: the
function's dotted path, ``args`` and ``kwargs``) and ``job.kind =
"task:<dotted path>"``. A job section that sets ``tasks`` (patterns such
as ``myapp.mail.*``) has a source of its own, a subclass of `FunctionJob`
made by `section_job_class`: its `jobCondition` takes the jobs whose kind
matches the patterns, and it runs only the ``@task`` functions that were
registered when it was made (at start-up) and match them — the
allow-list. A job naming anything else fails with a `TaskNotAllowed`
OOPS, and nothing is imported for it.
"""

from __future__ import annotations

__all__ = [
    "FunctionJob",
    "TaskJob",
    "kind_condition",
    "section_job_class",
    "task_matches",
]

from datetime import timedelta
from typing import Any, Iterable, Mapping, Optional

from storm.expr import And, Func, Or
from storm.locals import Int, Reference, Unicode
from zope.interface import directlyProvides, implementer, provider

from jobs.database import JSON, get_store, like_escape
from jobs.errors import TaskNotAllowed
from jobs.interfaces.job import IJobSource, IRunnableJob
from jobs.model.derived import DerivedJob
from jobs.model import dependencies
from jobs.model.job import Job
from jobs.model.resultof import marked_ids, resolved

KIND_PREFIX = "task:"


class TaskJob:
    """The context row of a function job."""

    __storm_table__ = "task_job"

    job_id = Int(name="job", primary=True)
    job = Reference(job_id, Job.id)
    task = Unicode(allow_none=False)
    args = JSON(allow_none=False)
    kwargs = JSON(allow_none=False)

    def __init__(self, job: Job, task: str, args: list[Any],
                 kwargs: dict[str, Any]):
        self.job = job
        self.task = task
        self.args = args
        self.kwargs = kwargs


def task_matches(name: str, patterns: Iterable[str]) -> bool:
    """True when the dotted name `name` matches one of `patterns`: a name
    (``myapp.mail.send_welcome``), a module's or package's tasks
    (``myapp.mail.*``), or every task (``*``)."""
    for pattern in patterns:
        if pattern == "*" or pattern == name or (
                pattern.endswith(".*") and name.startswith(pattern[:-1])):
            return True
    return False


def kind_condition(patterns: Iterable[str]) -> Any:
    """SQL: ``job.kind`` is a function job matching `patterns` (the same
    rule as `task_matches`, case-sensitive on both databases)."""
    terms = []
    for pattern in patterns:
        if pattern == "*" or pattern.endswith(".*"):
            prefix = KIND_PREFIX + pattern[:-1]
            terms.append(Func("substr", Job.kind, 1, len(prefix)) == prefix)
        else:
            terms.append(Job.kind == KIND_PREFIX + pattern)
    return Or(*terms) if terms else Job.kind == None  # noqa: E711


@implementer(IRunnableJob)
@provider(IJobSource)
class FunctionJob(DerivedJob):
    """A job calling a ``@task`` function: ``run()`` returns what it returns.

    The class itself creates jobs (`jobs.tasks.Task` does); each job
    section of tasks runs them through its own subclass
    (`section_job_class`), which knows the section's allow-list.

    :cvar section: the job section (None on the base class).
    :cvar patterns: the section's ``tasks`` patterns.
    :cvar allowed: ``{dotted name: Task}``: the registered tasks the
        section runs.
    """

    context_class = TaskJob
    section: Optional[str] = None
    patterns: tuple[str, ...] = ()
    allowed: Mapping[str, Any] = {}

    @classmethod
    def makeSubclass(cls, context: TaskJob) -> "FunctionJob":
        """Wrap `context`: function jobs have no job-type enum."""
        return cls(context)

    @classmethod
    def job_kind(cls, name: Optional[str] = None) -> str:
        """``job.kind`` of the function job calling `name`."""
        return KIND_PREFIX + (name or "")

    @classmethod
    def jobKindPatterns(cls) -> list[str]:
        """See `DerivedJob`: the kinds `kind_condition` matches."""
        return [like_escape(KIND_PREFIX + pattern[:-1]) + "%"
                if pattern == "*" or pattern.endswith(".*")
                else like_escape(KIND_PREFIX + pattern)
                for pattern in cls.patterns]

    @classmethod
    def jobCondition(cls) -> tuple[Any, list[Any]]:
        """See `BaseRunnableJobSource`: the jobs whose task matches the
        section's patterns, registered or not (those fail when run)."""
        return cls._once(lambda: (And(TaskJob.job_id == Job.id,
                                      kind_condition(cls.patterns)),
                                  [TaskJob]))

    @classmethod
    def databasePrivileges(cls) -> dict[str, set[str]]:
        """See `IJobSource`: ``task_job``, and what the section's tasks
        declare (``@task(database_privileges=...)``)."""
        privileges = super().databasePrivileges()
        for task in cls.allowed.values():
            for table, granted in task.database_privileges.items():
                privileges.setdefault(table, set()).update(granted)
        return privileges

    @property
    def task(self) -> Any:
        """The registered `jobs.tasks.Task` this job calls, or None when
        the section does not run it."""
        return self.allowed.get(self.context.task)

    def _policy(self, name: str, default: Any) -> Any:
        task = self.task
        return default if task is None else getattr(task, name)

    @property
    def retry_error_types(self) -> tuple[type, ...]:  # type: ignore[override]
        """See `IRunnableJob`: the task's."""
        return self._policy("retry_error_types", ())

    @property
    def user_error_types(self) -> tuple[type, ...]:  # type: ignore[override]
        """See `IRunnableJob`: the task's."""
        return self._policy("user_error_types", ())

    @property
    def retry_delay(self) -> timedelta:  # type: ignore[override]
        """See `IRunnableJob`: the task's."""
        return self._policy("retry_delay", DerivedJob.retry_delay)

    def __repr__(self) -> str:
        return "<FunctionJob %s job %s; status=%s>" % (
            self.context.task, self.job_id, self.job.status.title)

    def getOopsVars(self) -> list[tuple[str, Any]]:
        """See `IRunnableJob`."""
        return super().getOopsVars() + [("task", self.context.task)]

    def getOperationDescription(self) -> str:
        """See `IRunnableJob`."""
        return "running task %s" % self.context.task

    def run(self) -> Any:
        """See `IRunnableJob`: call the task with the job's arguments and
        return its result.

        :raises TaskNotAllowed: when the job names a function that is not
            a registered ``@task`` of this section; nothing is imported.
        """
        task = self.task
        if task is None:
            raise TaskNotAllowed(
                "Job %s names %s, which is not a registered @task of"
                " section %s (tasks: %s): it was not run, and nothing was"
                " imported for it." % (
                    self.job_id, self.context.task, self.section,
                    " ".join(self.patterns) or "none"))
        args, kwargs = self.context.args, self.context.kwargs
        marked = marked_ids(args, kwargs)
        if marked:
            # jobs.result_of(job) arguments: that job's result.
            results = dependencies.results_of(get_store(), marked)
            args, kwargs = resolved(args, results), resolved(kwargs, results)
        return task.function(*args, **kwargs)


# (section, patterns, allowed names) -> the section's job class: one per
# allow-list, so that a runner's claim statements (cached per source) are
# compiled once.
_section_classes: dict[tuple[str, tuple[str, ...], frozenset[str]],
                       type[FunctionJob]] = {}


def section_job_class(section: str, patterns: Iterable[str],
                      registered: Mapping[str, Any]) -> type[FunctionJob]:
    """The source of job section `section`'s function jobs.

    :param patterns: the section's ``tasks``.
    :param registered: ``{dotted name: Task}``: every registered task;
        those matching `patterns` are the section's allow-list. The
        longest of their ``lease_seconds`` is the class's
        `lease_duration` (the claims' lease when the section sets none).
    """
    patterns = tuple(patterns)
    allowed = {name: task for name, task in registered.items()
               if task_matches(name, patterns)}
    key = (section, patterns, frozenset(allowed))
    found = _section_classes.get(key)
    if found is None:
        leases = [task.lease_seconds for task in allowed.values()
                  if task.lease_seconds]
        namespace: dict[str, Any] = {
            "section": section, "patterns": patterns, "allowed": allowed,
            "__module__": __name__}
        if leases:
            namespace["lease_duration"] = timedelta(seconds=max(leases))
        found = _section_classes[key] = type(
            "FunctionJob", (FunctionJob,), namespace)
        directlyProvides(found, IJobSource)
    return found
