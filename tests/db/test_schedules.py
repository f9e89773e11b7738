"""Periodic schedules on both databases, with the frozen database clock:
each tick enqueued exactly once by three runners racing on their own
connections, the catch-up policies, a schedule's job running in its
task's section, ``run_jobs.py --schedules`` and ``jobs schedules``."""

import io
import json
import threading
from datetime import datetime, timedelta, timezone

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.cli import main
from jobs.database import disconnect, get_store
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model import ticks
from jobs.model.function import TaskJob
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.scheduler import TICK_HISTORY, Scheduler
from jobs.testing import scheduled, tasks
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing.testcase import DatabaseTestCase, on_each_database

UTC = timezone.utc
START = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
NOTE = "jobs.testing.scheduled.note"


def schedule_section(name, task, cron, **values):
    """Config text: a ``[schedule.NAME]`` section."""
    text = "[schedule.%s]\ntask: %s\ncron: %s\n" % (name, task, cron)
    text += "".join("%s: %s\n" % item for item in sorted(values.items()))
    return text + "\n"


class ScheduleTestCase(DatabaseTestCase):

    config_extra = scheduled.section("tidy", "note")

    def setUp(self):
        super().setUp()
        self.clock = self.useFixture(FrozenClockFixture(START)).clock
        self.logger = BufferLogger()

    def at(self, minutes, seconds=30):
        """Set the clock to 00:MM:SS of START's day."""
        self.clock.frozen_at = START.replace(second=seconds) + timedelta(
            minutes=minutes)

    def enqueue(self, scheduler=None):
        created = (scheduler or Scheduler(self.config, self.logger)
                   ).enqueue_due()
        self.store.invalidate()
        return created

    def ticks(self, schedule):
        """``[(tick, task of its job, its args, its kwargs)]``, oldest
        first."""
        rows = self.store.execute(
            "SELECT t.tick, t.job FROM schedule_tick t WHERE t.schedule = ?"
            " ORDER BY t.tick", (schedule,)).get_all()
        found = []
        for tick, job_id in rows:
            context = self.store.get(TaskJob, job_id)
            found.append((ticks._utc(tick).strftime("%H:%M"), context.task,
                          context.args, context.kwargs))
        transaction.abort()
        return found

    def run_section(self, *options, sections=("do_scheduled",)):
        script = JobCronScript(test_args=list(options) + list(sections),
                               commandline_config=True)
        script.logger = BufferLogger()
        code = script.lock_and_run()
        self.store.invalidate()
        log = script.logger.getLogBuffer()
        self.assertEqual(0, code, log)
        return log


@on_each_database
class TestEnqueue(ScheduleTestCase):

    config_extra = (ScheduleTestCase.config_extra + schedule_section(
        "hello", NOTE, "*/10 * * * *", args='["hello"]',
        kwargs='{"times": 2}'))

    def test_each_due_tick_is_enqueued_once_with_the_schedules_call(self):
        # 00:00:30: the 00:00 ticks of both schedules are on time.
        self.assertEqual(2, self.enqueue())
        self.assertEqual(0, self.enqueue())
        self.at(5)
        self.assertEqual(1, self.enqueue())  # tidy's 00:05
        self.at(10)
        self.assertEqual(2, self.enqueue())
        self.assertEqual(
            [("00:00", NOTE, ["hello"], {"times": 2}),
             ("00:10", NOTE, ["hello"], {"times": 2})], self.ticks("hello"))
        tidy = "jobs.testing.scheduled.tidy"
        self.assertEqual([("00:00", tidy, [], {}), ("00:05", tidy, [], {}),
                          ("00:10", tidy, [], {})], self.ticks(tidy))
        self.assertThat(self.logger.getLogBuffer(), Contains(
            "INFO    Schedule hello: tick 2026-01-01 00:10:00 UTC enqueued"
            " as job"))

    def test_a_new_schedule_does_not_run_a_tick_noticed_late(self):
        self.at(3)  # tidy's grace is 120 s: its 00:00 tick is late.
        self.assertEqual(1, self.enqueue())  # hello's (grace 300 s)
        self.assertEqual([], self.ticks("jobs.testing.scheduled.tidy"))
        self.at(5)
        self.assertEqual(1, self.enqueue())
        self.assertEqual(["00:05"], [tick for tick, *_ in self.ticks(
            "jobs.testing.scheduled.tidy")])

    def test_a_schedules_job_runs_in_its_tasks_section(self):
        self.enqueue()
        [(hello_job,)] = self.store.execute(
            "SELECT job FROM schedule_tick WHERE schedule = 'hello'")
        transaction.abort()
        log = self.run_section()
        self.assertThat(log, Contains("Ran 2 FunctionJob jobs."))
        job = self.store.get(Job, hello_job)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        # Run by the section's source, as its dbuser, like any of its jobs.
        self.assertEqual(2, self.store.execute(
            "SELECT count(*) FROM job_execution").get_one()[0])
        [row] = self.schedules()
        self.assertEqual("Completed", row["last_job_status"])

    def schedules(self, *names):
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.assertEqual(0, main(["--format", "json", "schedules"]))
        self.store.invalidate()
        rows = json.loads(out.getvalue())
        return [row for row in rows if row["schedule"] in (names or
                                                           ("hello",))]

    def test_jobs_schedules_lists_last_and_next_ticks(self):
        [hello] = self.schedules()
        self.assertEqual(
            {"schedule": "hello", "task": NOTE, "cron": "*/10 * * * *",
             "timezone": "UTC", "catch_up": "latest",
             "section": "do_scheduled", "last_tick": None, "last_job": None,
             "last_job_status": None, "next_tick": "2026-01-01 00:00:00"
             " (due)", "origin": self.config.path, "problem": None}, hello)
        self.enqueue()
        [hello] = self.schedules()
        self.assertEqual(
            ("2026-01-01 00:00:00", "Waiting", "2026-01-01 00:10:00"),
            (hello["last_tick"], hello["last_job_status"],
             hello["next_tick"]))
        self.assertIsNotNone(hello["last_job"])
        [tidy] = self.schedules("jobs.testing.scheduled.tidy")
        self.assertEqual(("@task", "*/5 * * * *", "do_scheduled"),
                         (tidy["origin"], tidy["cron"], tidy["section"]))
        # Its job pruned, the tick stays.
        self.store.find(Job).remove()
        transaction.commit()
        [hello] = self.schedules()
        self.assertEqual((None, "(pruned)"),
                         (hello["last_job"], hello["last_job_status"]))

    def test_run_jobs_schedules_enqueues_then_runs_the_sections(self):
        log = self.run_section("--schedules", sections=())
        self.assertThat(log, Contains("Schedule hello: tick"))
        self.assertEqual(2, self.store.find(Job).count())
        self.assertEqual({JobStatus.WAITING},
                         set(self.store.find(Job.status)))
        self.at(10)
        log = self.run_section("--schedules")
        self.assertThat(log, Contains("Ran 4 FunctionJob jobs."))

    def test_run_jobs_needs_a_section_or_schedules(self):
        script = JobCronScript(test_args=[], commandline_config=True)
        script.logger = BufferLogger()
        err = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        self.assertEqual(2, script.lock_and_run())
        self.assertThat(err.getvalue(), Contains(
            "error: name at least one SECTION (or --schedules)"))

    def test_old_ticks_are_forgotten_the_last_kept(self):
        self.enqueue()
        self.clock.advance(TICK_HISTORY + timedelta(hours=1))
        self.enqueue()
        self.assertEqual(1, len(self.ticks("hello")))
        self.assertEqual(1, len(self.ticks("jobs.testing.scheduled.tidy")))


@on_each_database
class TestCatchUp(ScheduleTestCase):
    """The runners were down from 00:01 to 00:33: the 00:05 ... 00:30
    ticks of an every-5-minutes schedule (grace 60 s) were missed."""

    config_extra = (scheduled.section("note") + "".join(
        schedule_section(policy, NOTE, "*/5 * * * *", catch_up=policy,
                         grace=60, args='["%s"]' % policy)
        for policy in ("latest", "all", "none")))

    def setUp(self):
        super().setUp()
        self.at(0)
        self.assertEqual(3, self.enqueue())
        self.at(33)
        self.enqueue()

    def test_latest_enqueues_the_latest_missed_tick_only(self):
        self.assertEqual(["00:00", "00:30"],
                         [tick for tick, *_ in self.ticks("latest")])

    def test_all_enqueues_each_missed_tick(self):
        self.assertEqual(
            ["00:%02d" % minute for minute in range(0, 31, 5)],
            [tick for tick, *_ in self.ticks("all")])

    def test_none_skips_to_the_next_tick(self):
        self.assertEqual(["00:00"], [tick for tick, *_ in self.ticks("none")])
        self.at(35)
        self.enqueue()
        self.assertEqual(["00:00", "00:35"],
                         [tick for tick, *_ in self.ticks("none")])


@on_each_database
class TestBrokenSchedules(ScheduleTestCase):

    config_extra = (
        scheduled.section("note") + tasks.SECTION
        + schedule_section("unrun", "jobs.testing.scheduled.tidy",
                           "* * * * *")
        + schedule_section("unknown", "jobs.testing.scheduled.nothing",
                           "* * * * *")
        + schedule_section("misfit", NOTE, "* * * * *", kwargs='{"x": 1}')
        + schedule_section("fine", "jobs.testing.tasks.add", "* * * * *",
                           args="[1, 2]"))

    def test_each_is_reported_once_and_the_others_go_on(self):
        scheduler = Scheduler(self.config, self.logger)
        self.assertEqual(1, self.enqueue(scheduler))
        self.at(1)
        self.assertEqual(1, self.enqueue(scheduler))
        log = self.logger.getLogBuffer()
        for message in (
                "WARNING Schedule unrun: no job section of %s runs task"
                " jobs.testing.scheduled.tidy (see the sections' tasks, and"
                " the task's section). Its ticks are not enqueued."
                % self.config.path,
                "WARNING Schedule unknown: jobs.testing.scheduled.nothing is"
                " not a registered @task (a job section's tasks must name its"
                " module). Its ticks are not enqueued.",
                "WARNING Schedule misfit: Task jobs.testing.scheduled.note:"):
            self.assertThat(log, Contains(message))
            self.assertEqual(1, log.count(message.split(":")[0] + ":"), log)
        self.assertEqual([], self.ticks("misfit"))
        self.assertEqual(2, len(self.ticks("fine")))


@on_each_database
class TestExactlyOnce(ScheduleTestCase):
    """Three runners, each a thread with its own connection and its own
    `Scheduler`, look at the same instant of the frozen clock, 100 times
    over: each tick is enqueued once."""

    config_extra = scheduled.section("note") + "".join(
        schedule_section(name, NOTE, "* * * * *", args='["%s"]' % name,
                         catch_up=policy)
        for name, policy in (("minutely", "latest"), ("each", "all")))

    RUNNERS = 3
    TICKS = 100

    def test_three_runners_enqueue_each_tick_once(self):
        lost = []
        real_insert = ticks.insert

        def insert(store, schedule, tick):
            took = real_insert(store, schedule, tick)
            if not took:
                lost.append((schedule, tick))
            return took

        self.useFixture(fixtures.MonkeyPatch(
            "jobs.model.ticks.insert", insert))
        barrier = threading.Barrier(self.RUNNERS + 1, timeout=120)
        created = [0] * self.RUNNERS
        errors = []

        def runner(index):
            scheduler = Scheduler(self.config, BufferLogger())
            try:
                for _ in range(self.TICKS):
                    barrier.wait()  # the clock was moved: go
                    created[index] += scheduler.enqueue_due()
                    barrier.wait()  # done: the clock may move
            except BaseException as e:
                errors.append(e)
                barrier.abort()
            finally:
                disconnect()

        threads = [threading.Thread(target=runner, args=(index,))
                   for index in range(self.RUNNERS)]
        for thread in threads:
            thread.start()
        for minute in range(self.TICKS):
            self.at(minute)
            barrier.wait()
            barrier.wait()
        for thread in threads:
            thread.join(60)
        self.assertEqual([], errors)
        expected = ["%02d:%02d" % divmod(minute, 60)
                    for minute in range(self.TICKS)]
        for name in ("minutely", "each"):
            found = self.ticks(name)
            self.assertEqual(expected, [tick for tick, *_ in found])
            self.assertEqual({(NOTE, (name,))},
                             {(task, tuple(args)) for _, task, args, _ in
                              found})
        # One job per tick, no more: every job is a tick's.
        self.assertEqual(2 * self.TICKS, self.store.find(Job).count())
        self.assertEqual(2 * self.TICKS, sum(created))
        # The race was real: runners did try to take ticks already taken.
        self.assertNotEqual([], lost)
        self.assertTrue(all(count > 0 for count in created), created)
        transaction.abort()
        self.assertIs(get_store(), self.store)
