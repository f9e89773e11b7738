"""``jobs schedules``: each periodic schedule, its last and next tick, and
the state of its last job (`jobs.scheduler`)."""

__all__ = ["add_commands"]

from collections import OrderedDict

from jobs.cli.formatting import output
from jobs.config import get_config
from jobs.database import database_now, get_store
from jobs.errors import ScheduleError
from jobs.interfaces.job import JobStatus
from jobs.model import ticks
from jobs.scheduler import configured_schedules, schedule_task

COLUMNS = ["schedule", "task", "cron", "timezone", "catch_up", "section",
           "last_tick", "last_job", "last_job_status", "next_tick"]


def _time(value):
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def schedule_rows(config, store):
    """One row (an ordered dict) per schedule of `config`: what
    ``jobs schedules`` prints. Times are UTC, by the database's clock."""
    schedules = configured_schedules(config)
    now = database_now(store)
    last = ticks.last_ticks(store, [schedule.name for schedule in schedules])
    rows = []
    for schedule in schedules:
        problem = None
        try:
            section = schedule_task(schedule, config).job_class(
                config).section
        except ScheduleError as e:
            section, problem = None, str(e)
        tick, job_id, status = last.get(schedule.name, (None, None, None))
        due = schedule.cron.due(tick, now)
        if tick is None:
            job_state = None
        elif job_id is None:
            job_state = "(pruned)"
        else:
            job_state = JobStatus.items[status].title
        rows.append(OrderedDict(
            schedule=schedule.name, task=schedule.task,
            cron=schedule.cron.expr, timezone=schedule.cron.timezone,
            catch_up=schedule.cron.catch_up, section=section,
            last_tick=_time(tick), last_job=job_id,
            last_job_status=job_state,
            next_tick=("%s (due)" % _time(due[0]) if due
                       else _time(schedule.cron.next_after(now))),
            origin=schedule.origin, problem=problem))
    return rows


def cmd_schedules(options):
    rows = schedule_rows(get_config(), get_store())
    output(rows, options, COLUMNS)
    if options.format != "json":
        for row in rows:
            if row["problem"]:
                print("schedule %s: %s Its ticks are not enqueued."
                      % (row["schedule"], row["problem"]))


def add_commands(commands, parser_class):
    """Add ``schedules`` to `commands` (argparse)."""
    commands.add_parser(
        "schedules", help="each periodic schedule: its last tick and the"
        " state of its job, its next tick (UTC)").set_defaults(
            run=cmd_schedules)
