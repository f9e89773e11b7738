"""Options every job type takes at creation (delay, scheduled_start,
priority, unique_key), the job's kind, and bulk creation; on both
databases."""

import multiprocessing
from datetime import date, datetime, timedelta, timezone

import transaction

from jobs.demo.model import DemoJob
from jobs.errors import InvalidJobOption
from jobs.interfaces.job import JobStatus
from jobs.model.options import enqueue_options
from jobs.model.job import Job
from jobs.testing import tasks
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing.foojob import DoBarJob, DoFooJob, FooJob
from jobs.testing.testcase import DatabaseTestCase, TestCase, on_each_database
from tests.db.enqueue_race import enqueue_rounds

ROUNDS = 200


class TestOptionsAreChecked(TestCase):
    """One clear error naming the argument, before anything is written."""

    def test_bad_options(self):
        naive = datetime(2030, 1, 1)
        for options, message in [
                ({"delay": -1}, "delay: -1 is negative: a job cannot start"
                 " in the past."),
                ({"delay": timedelta(seconds=-5)}, "delay:"
                 " datetime.timedelta(days=-1, seconds=86395) is negative: a"
                 " job cannot start in the past."),
                ({"delay": "5"}, "delay: '5' is not a number of seconds or a"
                 " timedelta."),
                ({"delay": True}, "delay: True is not a number of seconds or"
                 " a timedelta."),
                ({"delay": float("nan")}, "delay: nan is not a finite number"
                 " of seconds."),
                ({"delay": timedelta(days=3000000)}, "delay:"
                 " datetime.timedelta(days=3000000) puts the job's start past"
                 " the year 9999."),
                ({"scheduled_start": naive}, "scheduled_start:"
                 " 2030-01-01T00:00:00 has no time zone: give an aware"
                 " datetime (tzinfo=timezone.utc)."),
                ({"scheduled_start": date(2030, 1, 1)}, "scheduled_start:"
                 " datetime.date(2030, 1, 1) is not a datetime."),
                ({"scheduled_start": datetime(9999, 12, 31, 23, tzinfo=timezone(
                    timedelta(hours=-5)))}, "scheduled_start:"
                 " 9999-12-31T23:00:00-05:00 is past the year 9999 in UTC."),
                ({"delay": 5, "scheduled_start": naive}, "delay and"
                 " scheduled_start: give one of them, not both."),
                ({"priority": 1.5}, "priority: 1.5 is not a whole number."),
                ({"priority": "high"}, "priority: 'high' is not a whole"
                 " number."),
                ({"priority": 2 ** 31}, "priority: 2147483648 is outside"
                 " -2147483648..2147483647."),
                ({"unique_key": 42}, "unique_key: 42 is not text."),
                ({"unique_key": ""}, "unique_key: the empty string: give a"
                 " key, or None for none."),
        ]:
            error = self.assertRaises(InvalidJobOption, enqueue_options,
                                      **options)
            self.assertEqual(message, str(error), options)
            self.assertIsInstance(error, ValueError)

    def test_good_options(self):
        start = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
        options = enqueue_options(scheduled_start=start, priority=-3,
                                  unique_key="k")
        self.assertEqual(
            (None, datetime(2030, 1, 1, 10, tzinfo=timezone.utc), -3, "k"),
            (options.delay, options.scheduled_start, options.priority,
             options.unique_key))
        self.assertEqual(90.0, enqueue_options(
            delay=timedelta(minutes=1, seconds=30)).delay)


@on_each_database
class TestEnqueueOptions(DatabaseTestCase):

    config_extra = tasks.SECTION

    def test_every_job_type_sets_its_kind(self):
        foo = self.factory.makeFoo()
        made = [DoFooJob.create(foo), DoBarJob.create(foo),
                DemoJob.create("complete", "hi"), tasks.add.delay(1, 2)]
        self.assertEqual(
            ["foo_job:0", "foo_job:1", "job:1000",
             "task:jobs.testing.tasks.add"],
            [job.job.kind for job in made])

    def test_typed_jobs_take_delay_scheduled_start_and_priority(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        foo = self.factory.makeFoo()
        later = DoFooJob.create(foo, delay=90, priority=4)
        at = clock.now() + timedelta(hours=1)
        scheduled = DemoJob.create("complete", "hi", scheduled_start=at,
                                   priority=-2)
        now = DoFooJob.create(foo)
        transaction.commit()
        self.store.invalidate()
        self.assertEqual(
            [(clock.now() + timedelta(seconds=90), 4), (at, -2), (None, 0)],
            [(job.job.scheduled_start, job.job.priority)
             for job in (later, scheduled, now)])
        self.assertEqual([now.job_id],
                         [job.job_id for job in DoFooJob.iterReady()])
        error = self.assertRaises(InvalidJobOption, DoFooJob.create, foo,
                                  priority="urgent")
        self.assertEqual("priority: 'urgent' is not a whole number.",
                         str(error))

    def test_a_taken_unique_key_returns_the_pending_job(self):
        foo = self.factory.makeFoo()
        first = DoFooJob.create(foo, unique_key="refresh-1")
        again = DoFooJob.create(foo, unique_key="refresh-1", note="other")
        other_type = DoBarJob.create(foo, unique_key="refresh-1")
        demo = DemoJob.create("complete", "a", unique_key="d")
        demo_again = DemoJob.create("complete", "b", unique_key="d")
        task_job = tasks.add.apply_async((1, 2), unique_key="t")
        task_again = tasks.add.apply_async((3, 4), unique_key="t")
        transaction.commit()
        self.assertEqual(first.job_id, again.job_id)
        self.assertEqual({}, again.context.json_data)  # the first's data
        self.assertNotEqual(first.job_id, other_type.job_id)
        self.assertEqual(demo.job_id, demo_again.job_id)
        self.assertEqual(task_job.job_id, task_again.job_id)
        self.assertEqual([1, 2], task_again.context.args)
        self.assertEqual(4, self.store.find(Job).count())
        self.assertEqual(2, self.store.find(FooJob).count())
        # A suspended job still holds its key; a finished one frees it.
        first.suspend()
        transaction.commit()
        self.assertEqual(first.job_id, DoFooJob.create(
            foo, unique_key="refresh-1").job_id)
        first.resume()
        first.job.cancel()
        transaction.commit()
        fresh = DoFooJob.create(foo, unique_key="refresh-1")
        self.assertNotEqual(first.job_id, fresh.job_id)
        self.assertEqual(JobStatus.WAITING, fresh.status)

    def test_retrying_a_job_whose_key_a_newer_job_holds_is_refused(self):
        import io
        import fixtures
        from jobs.cli import main
        from jobs.log import DevNullLogger
        from jobs.runner import JobRunner
        foo = self.factory.makeFoo()
        old = DoFooJob.create(foo, unique_key="k", raise_="error")
        transaction.commit()
        JobRunner([old], DevNullLogger()).runAll()
        self.assertEqual(JobStatus.FAILED, old.status)
        DoFooJob.create(foo, unique_key="k")
        transaction.commit()
        err = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", err))
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", io.StringIO()))
        self.assertEqual(2, main(["retry", str(old.job_id)]))
        # PostgreSQL names the index, SQLite its columns.
        self.assertTrue(
            "job__kind__unique_key__pending__idx" in err.getvalue()
            or "job.kind, job.unique_key" in err.getvalue(), err.getvalue())
        self.assertNotIn("Traceback", err.getvalue())

    def test_create_many_inserts_typed_jobs_in_bulk(self):
        foo, bar = self.factory.makeFoo(), self.factory.makeFoo()
        rows = [{"foo": foo, "json_data": {"n": n}} for n in range(1100)]
        rows.append({"foo": bar, "json_data": {}, "priority": 9,
                     "unique_key": "bar"})
        rows.append({"foo": bar, "json_data": {}, "unique_key": "bar"})
        ids = DoFooJob.createMany(rows, delay=0, priority=1)
        transaction.commit()
        self.assertEqual(1102, len(ids))
        self.assertEqual(ids[-2], ids[-1])
        self.assertEqual(1101, self.store.find(FooJob).count())
        job = DoFooJob.get(ids[5])
        self.assertEqual(({"n": 5}, foo.id, 1, "foo_job:0"),
                         (job.context.json_data, job.context.foo_id,
                          job.job.priority, job.job.kind))
        self.assertEqual(9, DoFooJob.get(ids[-1]).job.priority)
        self.assertEqual([], DoFooJob.createMany([]))


class TestUniqueKeyRace(DatabaseTestCase):
    """Two processes create the job of one key at the same moment, 200
    times: each round leaves one pending job, and both get it back."""

    config_extra = tasks.SECTION

    def race(self):
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        results = context.Queue()
        processes = [context.Process(target=enqueue_rounds, args=(
            self.config_fixture.path, self.db.uri, ROUNDS, barrier, results))
            for _ in range(2)]
        for process in processes:
            process.start()
        self.addCleanup(lambda: [p.kill() for p in processes])
        got = [results.get(timeout=300) for _ in processes]
        for process in processes:
            process.join(60)
            self.assertEqual(0, process.exitcode)
        self.assertEqual(got[0], got[1])
        self.assertEqual(ROUNDS, len(set(got[0])))
        per_key = dict(self.store.execute(
            "SELECT unique_key, count(*) FROM job GROUP BY unique_key"))
        self.assertEqual({"round-%d" % n: 1 for n in range(ROUNDS)}, per_key)


class TestUniqueKeyRacePostgreSQL(TestUniqueKeyRace):

    database_kind = "postgresql"
    __test__ = True

    def test_two_processes_one_key_at_once(self):
        self.race()


class TestUniqueKeyRaceSQLite(TestUniqueKeyRace):

    database_kind = "sqlite"
    __test__ = True

    def test_two_processes_one_key_at_once(self):
        self.race()
