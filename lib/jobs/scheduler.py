"""Enqueuing the due ticks of periodic schedules, once each.

The schedules are the configuration's ``[schedule.NAME]`` sections and the
``@task(schedule=...)`` tasks a job section of the configuration runs
(`configured_schedules`). Every worker enqueues their due ticks at each
pass, and ``run_jobs.py --schedules`` (``jobs run --schedules``) does it
from cron: there is no leader. Each tick is taken by inserting its
``schedule_tick`` row (`jobs.model.ticks.insert`); the runner whose insert
took the row creates the tick's job in the same transaction, so a tick is
enqueued exactly once however many runners, on however many hosts, look
at the same time. "Now" is the database's clock (`database_now`), which
every runner shares. Which ticks are due, and what happens to missed ones,
is `jobs.schedule.Cron.due`.

A tick's job is the task's function job, called with the schedule's
arguments: it runs in the job section that runs the task, like any job of
the task. The ticks of the last `TICK_HISTORY` are kept (the last one
always): `jobs schedules` shows the last one and the state of its job.
"""

from __future__ import annotations

__all__ = [
    "Scheduler",
    "TICK_HISTORY",
    "configured_schedules",
    "schedule_task",
]

import logging
from datetime import datetime, timedelta
from typing import Any, Optional

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError

from jobs.config import JobsConfig
from jobs.database import database_now, get_store
from jobs.errors import ConfigError, DatabaseError, JobsError, ScheduleError
from jobs.model import ticks
from jobs.model.function import FunctionJob
from jobs.schedule import Schedule
from jobs.tasks import Task, registered_tasks

# How long enqueued ticks are remembered (the last one: always).
TICK_HISTORY = timedelta(days=7)


def configured_schedules(config: JobsConfig) -> list[Schedule]:
    """The schedules of `config`'s ``[schedule.NAME]`` sections, then
    those of the ``@task(schedule=...)`` tasks registered so far that a
    job section of `config` runs (named by the task's dotted name)."""
    schedules = list(config.schedules)
    for name, task in sorted(registered_tasks().items()):
        if task.schedule is not None and _section_runs(task, config):
            schedules.append(Schedule(name, name, task.schedule))
    return schedules


def _section_runs(task: Task[Any, Any], config: JobsConfig) -> bool:
    try:
        return task.job_class(config) is not FunctionJob
    except ConfigError:
        return False


def schedule_task(schedule: Schedule, config: JobsConfig) -> Task[Any, Any]:
    """The ``@task`` that `schedule` calls.

    :raises ScheduleError: when it names no registered task, or one that
        no job section of `config` runs.
    """
    task = registered_tasks().get(schedule.task)
    if task is None:
        raise ScheduleError(
            "%s is not a registered @task (a job section's tasks must name"
            " its module)." % schedule.task)
    if not _section_runs(task, config):
        raise ScheduleError(
            "no job section of %s runs task %s (see the sections' tasks,"
            " and the task's section)." % (config.path, schedule.task))
    return task


class Scheduler:
    """Enqueues the due ticks of a configuration's schedules.

    One per runner process: it remembers, per schedule, the next time a
    tick can be due, so that a pass with nothing due costs one clock
    reading.

    :param config: the `JobsConfig`.
    :param logger: where enqueued ticks (INFO) and broken schedules
        (WARNING, once per process) are logged.
    """

    def __init__(self, config: JobsConfig,
                 logger: Optional[logging.Logger] = None):
        self.config = config
        self.logger = logger or logging.getLogger(__name__)
        # {schedule name: the first time a tick of it can be due}
        self._next: dict[str, datetime] = {}
        self._schedules: Optional[list[Schedule]] = None
        self._reported: set[tuple[str, str]] = set()

    def enqueue_due(self) -> int:
        """Enqueue every due tick of every schedule through this thread's
        store, one transaction per schedule (committed); return the
        number of jobs created. A schedule that cannot be enqueued (its
        task is not run by any section, its arguments do not fit) is
        logged once at WARNING and left out; the others go on.

        :raises storm.exceptions.DatabaseError: when the database fails
            (the transaction is aborted).
        """
        if self._schedules is None:  # the tasks are registered by now
            self._schedules = configured_schedules(self.config)
        schedules = self._schedules
        if not schedules:
            return 0
        store = get_store()
        try:
            now = database_now(store)
            looking = [schedule for schedule in schedules
                       if self._next.get(schedule.name, now) <= now]
            last = ticks.last_ticks(store, [schedule.name
                                            for schedule in looking])
            transaction.abort()  # the reads' (SQLite: its write lock)
            created = 0
            for schedule in looking:
                found = last.get(schedule.name)
                due = schedule.cron.due(found[0] if found else None, now)
                if due:
                    created += self._enqueue(store, schedule, due)
                if not due or due[-1] == schedule.cron.latest_at(now):
                    # Caught up: nothing can be due before its next tick.
                    self._next[schedule.name] = schedule.cron.next_after(now)
            return created
        except BaseException:
            transaction.abort()
            raise

    def run_once(self) -> int:
        """`enqueue_due` for a cron run (``run_jobs.py --schedules``):
        return its exit status, 2 after logging the error when the
        database connection is lost (the next run enqueues the due
        ticks)."""
        try:
            self.enqueue_due()
        except (DatabaseError, StormDatabaseError) as e:
            self.logger.error(
                "Schedules: lost the database connection (%s); the due"
                " ticks are enqueued by the next run.",
                " ".join(str(e).split()) or type(e).__name__)
            return 2
        return 0

    def _enqueue(self, store: Any, schedule: Schedule,
                 due: list[datetime]) -> int:
        """Take and create `due` ticks of `schedule`; commit. Return the
        number of jobs created (0 when other runners took them all)."""
        try:
            task = schedule_task(schedule, self.config)
            created = []
            for tick in due:
                if not ticks.insert(store, schedule.name, tick):
                    continue  # another runner took it
                job = task.apply_async(schedule.args, schedule.kwargs)
                ticks.set_job(store, schedule.name, tick, job.job_id)
                created.append((tick, job.job_id))
            ticks.forget_before(store, schedule.name, due[-1] - TICK_HISTORY)
            transaction.commit()
        except DatabaseError:
            transaction.abort()
            raise  # the database's, not the schedule's
        except JobsError as e:
            transaction.abort()
            self._report(schedule, e)
            return 0
        for tick, job_id in created:
            self.logger.info("Schedule %s: tick %s UTC enqueued as job %d.",
                             schedule.name, tick.strftime("%Y-%m-%d %H:%M:%S"),
                             job_id)
        return len(created)

    def _report(self, schedule: Schedule, error: Exception) -> None:
        key = (schedule.name, str(error))
        if key in self._reported:
            return
        self._reported.add(key)
        self.logger.warning("Schedule %s: %s Its ticks are not enqueued.",
                            schedule.name, error)
