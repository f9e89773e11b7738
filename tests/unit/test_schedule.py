"""Periodic schedules without a database: which ticks are due
(`jobs.schedule.Cron.due`), time zones and DST, the catch-up policies,
and ``[schedule.NAME]`` sections read from the configuration."""

import os
from datetime import datetime, timedelta, timezone

import fixtures
import testtools
from testtools.matchers import Contains

from jobs.config import load
from jobs.errors import ConfigError, ScheduleError
from jobs.schedule import MAX_CATCH_UP, Cron

UTC = timezone.utc


def at(hour, minute=0, second=0, day=1, month=1):
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


class TestDue(testtools.TestCase):
    """`Cron.due(last, now)`: every 5 minutes, noticed at various times."""

    def test_the_tick_that_just_came_is_due_once(self):
        cron = Cron("*/5 * * * *")
        self.assertEqual([at(0, 5)], cron.due(at(0, 0), at(0, 5)))
        self.assertEqual([at(0, 5)], cron.due(at(0, 0), at(0, 7)))
        self.assertEqual([], cron.due(at(0, 5), at(0, 7)))
        self.assertEqual([], cron.due(at(0, 5), at(0, 5)))

    def test_a_new_schedule_starts_with_its_tick_if_on_time(self):
        cron = Cron("*/5 * * * *", grace=60)
        self.assertEqual([at(0, 5)], cron.due(None, at(0, 5, 59)))
        # Later than grace: nothing before the schedule existed runs; it
        # waits for its next tick.
        self.assertEqual([], cron.due(None, at(0, 6, 1)))
        # Whatever its catch-up policy.
        self.assertEqual([], Cron("*/5 * * * *", catch_up="all",
                                  grace=60).due(None, at(0, 6, 1)))

    def test_catch_up_latest_enqueues_only_the_latest_missed_tick(self):
        cron = Cron("*/5 * * * *", catch_up="latest", grace=60)
        # Down from 00:01 to 00:33: six ticks missed.
        self.assertEqual([at(0, 30)], cron.due(at(0, 0), at(0, 33)))

    def test_catch_up_all_enqueues_each_missed_tick(self):
        cron = Cron("*/5 * * * *", catch_up="all", grace=60)
        self.assertEqual([at(0, m) for m in (5, 10, 15, 20, 25, 30)],
                         cron.due(at(0, 0), at(0, 33)))

    def test_catch_up_all_enqueues_a_bounded_number_per_pass(self):
        cron = Cron("* * * * *", catch_up="all")
        first = cron.due(at(0, 0), at(0, 0, day=3))
        self.assertEqual(MAX_CATCH_UP, len(first))
        self.assertEqual(at(0, 1), first[0])
        # The next pass goes on from the last one enqueued.
        second = cron.due(first[-1], at(0, 0, day=3))
        self.assertEqual(first[-1] + timedelta(minutes=1), second[0])

    def test_catch_up_none_skips_to_the_next_tick(self):
        cron = Cron("*/5 * * * *", catch_up="none", grace=60)
        # The latest due tick is late: nothing now.
        self.assertEqual([], cron.due(at(0, 0), at(0, 33)))
        # Its next tick, on time, runs; the missed ones never do.
        self.assertEqual([at(0, 35)], cron.due(at(0, 0), at(0, 35, 30)))

    def test_catch_up_none_runs_a_tick_noticed_within_grace(self):
        cron = Cron("*/5 * * * *", catch_up="none", grace=60)
        self.assertEqual([at(0, 5)], cron.due(at(0, 0), at(0, 6)))

    def test_next_after(self):
        cron = Cron("0 3 * * *")
        self.assertEqual(at(3, day=2), cron.next_after(at(3)))
        self.assertEqual(at(3), cron.next_after(at(2, 59, 59)))


class TestTimeZones(testtools.TestCase):

    def test_a_local_time_is_read_in_its_time_zone(self):
        cron = Cron("0 3 * * *", timezone="Europe/Rome")
        # 03:00 in Rome is 02:00 UTC in winter, 01:00 UTC in summer.
        self.assertEqual(at(2, day=5), cron.next_after(at(0, day=5)))
        self.assertEqual(at(1, day=5, month=7),
                         cron.next_after(at(0, day=5, month=7)))

    def test_a_tick_in_the_skipped_hour_runs_after_it(self):
        # 2026-03-29: Rome's clocks jump from 02:00 to 03:00.
        cron = Cron("30 2 * * *", timezone="Europe/Rome")
        ticks = cron.ticks_after(at(12, day=27, month=3))
        self.assertEqual(
            [at(1, 30, day=28, month=3),   # 02:30 CET
             at(1, day=29, month=3),       # 03:00 CEST, the first after
             at(0, 30, day=30, month=3)],  # 02:30 CEST
            [next(ticks) for _ in range(3)])

    def test_a_tick_in_the_repeated_hour_runs_once(self):
        # 2026-10-25: Rome's clocks go back from 03:00 to 02:00.
        cron = Cron("30 2 * * *", timezone="Europe/Rome")
        ticks = cron.ticks_after(at(12, day=24, month=10))
        self.assertEqual(
            [at(0, 30, day=25, month=10), at(1, 30, day=26, month=10)],
            [next(ticks) for _ in range(2)])


class TestErrors(testtools.TestCase):

    def test_each_bad_value_is_one_line_naming_it(self):
        for kwargs, message in (
                (dict(expr="* * *"), "'* * *' is not a cron expression:"
                 " Wrong number of fields."),
                (dict(expr="61 * * * *"), "'61 * * * *' is not a cron"
                 " expression: Bad minute."),
                (dict(expr="0 0 30 2 *"), "'0 0 30 2 *' is not a cron"
                 " expression: Bad day-of-month."),
                (dict(expr=""), "'' is not a cron expression."),
                (dict(expr="* * * * *", timezone="Mars/Olympus"),
                 "'Mars/Olympus' is not a time zone (use an IANA name: UTC,"
                 " Europe/Rome)."),
                (dict(expr="* * * * *", catch_up="some"),
                 "catch_up 'some' is not one of latest, all, none."),
                (dict(expr="* * * * *", grace=-1),
                 "grace -1 is not 0 seconds or more.")):
            error = self.assertRaises(ScheduleError, Cron, **kwargs)
            self.assertEqual(message, str(error))
            self.assertIsInstance(error, ValueError)


class TestScheduleSections(testtools.TestCase):
    """``[schedule.NAME]`` sections (a lazr.config category)."""

    def load(self, text):
        folder = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(folder, "app.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: base\n\n[reports]\ntasks: app.*\n\n"
                    + text)
        return path, load(path)

    def test_a_schedule_section_is_read(self):
        _, config = self.load(
            "[schedule.nightly_report]\ntask: app.reports.nightly\n"
            "cron: 0 3 * * *\ntimezone: Europe/Rome\ncatch_up: all\n"
            "grace: 90\nargs: [1, \"x\"]\nkwargs: {\"full\": true}\n\n"
            "[schedule.tidy]\ntask: app.tidy\ncron: */5 * * * *\n\n"
            "[schedule.z]\ntask: app.z\ncron: 0 * * * *\ncatch_up: none\n")
        nightly, tidy, z = config.schedules
        self.assertEqual("none", z.cron.catch_up)
        self.assertEqual(
            ("nightly_report", "app.reports.nightly", "0 3 * * *",
             "Europe/Rome", "all", 90.0, (1, "x"), {"full": True}),
            (nightly.name, nightly.task, nightly.cron.expr,
             nightly.cron.timezone, nightly.cron.catch_up,
             nightly.cron.grace, nightly.args, nightly.kwargs))
        self.assertEqual(("UTC", "latest", 300.0, (), {}), (
            tidy.cron.timezone, tidy.cron.catch_up, tidy.cron.grace,
            tidy.args, tidy.kwargs))
        # A schedule section is not a job section.
        self.assertEqual(["reports"], config.job_section_names)

    def test_no_schedule(self):
        self.assertEqual([], self.load("")[1].schedules)

    def test_a_bad_schedule_fails_the_load_naming_file_section_and_key(self):
        for text, message in (
                ("cron: * * * * *\n", "[schedule.s]: task is not set."),
                ("task: app.t\n", "[schedule.s]: cron is not set."),
                ("task: app.t\ncron: * * * * *\ncorn: 1\n",
                 "[schedule.s]: unknown key corn (a schedule's keys: args,"
                 " catch_up, cron, grace, kwargs, task, timezone)."),
                ("task: app.t\ncron: 0 3 * *\n", "[schedule.s]: '0 3 * *'"
                 " is not a cron expression: Wrong number of fields."),
                ("task: app.t\ncron: * * * * *\ntimezone: Rome\n",
                 "[schedule.s]: 'Rome' is not a time zone"),
                ("task: app.t\ncron: * * * * *\ncatch_up: most\n",
                 "[schedule.s]: catch_up 'most' is not one of latest, all,"
                 " none."),
                ("task: app.t\ncron: * * * * *\ngrace: soon\n",
                 "[schedule.s] grace: 'soon' is not a number."),
                ("task: app.t\ncron: * * * * *\nargs: {}\n",
                 "[schedule.s]: args: '{}' is not a JSON array."),
                ("task: app.t\ncron: * * * * *\nkwargs: {x\n",
                 "[schedule.s]: kwargs: not JSON")):
            folder = self.useFixture(fixtures.TempDir()).path
            path = os.path.join(folder, "app.conf")
            with open(path, "w") as f:
                f.write("[meta]\nextends: base\n\n[schedule.s]\n" + text)
            error = self.assertRaises(ConfigError, load, path)
            self.assertThat(str(error), Contains(path + ": " + message))
            self.assertEqual(1, len(str(error).splitlines()))
