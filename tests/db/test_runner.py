"""JobRunner: one test per row of the outcome table, orphans and fencing,
on PostgreSQL and SQLite."""

import threading
from datetime import timedelta

import transaction
from testtools.matchers import Contains, Not
from zope.interface.verify import verifyObject

from jobs.database import disconnect, get_store
from jobs.interfaces.job import JobStatus
from jobs.interfaces.runner import IJobRunner
from jobs.log import BufferLogger
from jobs.model import claims
from jobs.model.job import Job
from jobs.runner import JobRunner
from jobs.testing.fixtures import CommitCounterFixture, FrozenClockFixture
from jobs.testing.foojob import DoFooJob, Foo, FooJobDerived, FooJobType
from jobs.testing.testcase import DatabaseTestCase, on_each_database


class NotifyingJob(DoFooJob):
    """Records its notifications, optionally failing in them."""

    fail_notify = False

    def notifyOops(self, report):
        self.notified = ("oops", report["id"])
        if self.fail_notify:
            raise RuntimeError("the mail server is down")

    def notifyUserError(self, error):
        self.notified = ("user", error)
        if self.fail_notify:
            raise RuntimeError("the mail server is down")


class OutcomeTestCase(DatabaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = self.useFixture(FrozenClockFixture()).clock
        self.logger = BufferLogger()

    def make_job(self, max_retries=0, job_class=NotifyingJob, **behaviour):
        foo = self.factory.makeFoo(name="foo")
        job = self.factory.makeDoFooJob(
            foo=foo, job_class=job_class, note="written by the job",
            **behaviour)
        job.job.max_retries = max_retries
        transaction.commit()
        return job

    def run_jobs(self, *jobs):
        runner = JobRunner(list(jobs), logger=self.logger)
        runner.runAll()
        transaction.abort()
        return runner

    def assertNote(self, expected, job):
        self.assertEqual(expected, self.store.get(Foo, job.context.foo_id).note)

    def assertLogged(self, text):
        self.assertThat(self.logger.getLogBuffer(), Contains(text))

    def reclaim_and_complete(self, job_id):
        try:
            job = get_store().get(Job, job_id)
            job.acquireLease(60)
            job.start(manage_transaction=True)
            job.complete(manage_transaction=True)
        finally:
            disconnect()


@on_each_database
class TestOutcomes(OutcomeTestCase):

    def test_runner_provides_IJobRunner(self):
        self.assertTrue(verifyObject(IJobRunner, JobRunner([])))

    def test_returns_completes_and_commits(self):
        job = self.make_job()
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertEqual(1, job.attempt_count)
        self.assertIsNotNone(job.date_finished)
        self.assertNote("written by the job", job)
        self.assertEqual(([job], []), (runner.completed_jobs,
                                       runner.incomplete_jobs))
        self.assertEqual([], self.oopses())
        # One INFO line a job that completes: a busy queue's log stays
        # readable (the completion is at DEBUG).
        self.assertEqual(
            "INFO    Running NotifyingJob (ID %d), attempt 1\n"
            "DEBUG   Completed NotifyingJob (ID %d).\n"
            % (job.job_id, job.job_id), self.logger.getLogBuffer())

    def test_retry_error_with_attempts_left_queues_and_commits(self):
        job = self.make_job(max_retries=1, raise_="retry")
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.WAITING, job.status)
        self.assertEqual(
            self.clock.frozen_at + timedelta(minutes=10), job.scheduled_start)
        self.assertIsNone(job.lease_expires)
        self.assertNote("written by the job", job)
        self.assertEqual([job], runner.incomplete_jobs)
        self.assertEqual([], self.oopses())
        self.assertLogged(
            "INFO    Scheduling retry due to RetryError: Try again later.")
        # Not ready until the delay has passed; then it runs again.
        self.assertEqual([], list(DoFooJob.iterReady()))
        self.clock.advance(timedelta(minutes=10))
        self.assertEqual([job.job_id], [j.job_id for j in DoFooJob.iterReady()])

    def test_retry_error_without_attempts_left_fails_with_oops(self):
        job = self.make_job(max_retries=1, raise_="retry")
        self.run_jobs(job)
        self.clock.advance(timedelta(minutes=10))
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertEqual(2, job.attempt_count)
        [oops] = self.oopses()
        self.assertEqual("RetryError", oops["type"])
        self.assertEqual([oops["id"]], runner.oops_ids)

    def test_retry_error_fails_rolls_back(self):
        job = self.make_job(max_retries=0, raise_="retry")
        self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertNote(None, job)
        self.assertEqual(1, len(self.oopses()))

    def test_requeue_error_gives_the_job_back_rolled_back_and_due(self):
        # What a Celery worker does with a soft time limit.
        job = self.make_job(raise_="error")
        runner = JobRunner([job], logger=self.logger,
                           requeue_error_types=(ValueError,))
        runner.runAll()
        transaction.abort()
        self.assertEqual((JobStatus.WAITING, 1, None, None),
                         (job.status, job.attempt_count, job.lease_expires,
                          job.scheduled_start))
        self.assertNote(None, job)
        self.assertEqual(([job.job_id], [job], []),
                         (runner.requeued, runner.incomplete_jobs,
                          self.oopses()))
        self.assertLogged("Giving NotifyingJob (ID %d) back to the queue"
                          " after ValueError." % job.job_id)
        # Due at once: the next runner takes it as attempt 2.
        self.assertEqual([job.job_id],
                         [j.job_id for j in DoFooJob.iterReady()])

    def test_user_error_fails_without_oops(self):
        job = self.make_job(raise_="user")
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertNote(None, job)
        self.assertEqual([], self.oopses())
        self.assertEqual([], runner.oops_ids)
        self.assertEqual("user", job.notified[0])
        self.assertLogged(
            "failed with user error UserError('You asked for something "
            "impossible.').")

    def test_suspend_suspends_and_commits(self):
        job = self.make_job(raise_="suspend")
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.SUSPENDED, job.status)
        self.assertNote("written by the job", job)
        self.assertEqual([job], runner.incomplete_jobs)
        self.assertEqual([], self.oopses())

    def test_other_error_fails_with_oops(self):
        job = self.make_job(raise_="error")
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertNote(None, job)
        [oops] = self.oopses()
        self.assertEqual([oops["id"]], runner.oops_ids)
        self.assertEqual(("oops", oops["id"]), job.notified)
        self.assertEqual("ValueError", oops["type"])
        self.assertEqual("Something broke (7).", oops["value"])
        self.assertEqual("T", oops["reporter"])
        self.assertEqual(
            {"job_id": str(job.job_id), "foo_id": str(job.context.foo_id),
             "foo_job_id": str(job.context.id), "foo_job_type": "Do foo"},
            oops["req_vars"])
        self.assertEqual(job.job_id, oops["job_id"])
        self.assertEqual("NotifyingJob", oops["job_type"])
        self.assertEqual("doing do foo to foo %d" % job.context.foo_id,
                         oops["operation"])
        self.assertEqual("<redacted>", oops["locals"]["password"])
        self.assertThat(oops["tb_text"], Contains("in run"))
        self.assertLogged("INFO    Job resulted in OOPS: %s" % oops["id"])

    def test_failing_notifyOops_gives_two_oopses(self):
        job = self.make_job(raise_="error")
        job.fail_notify = True
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertEqual(
            ["ValueError", "RuntimeError"],
            [oops["type"] for oops in self.oopses()])
        self.assertEqual(2, len(runner.oops_ids))

    def test_failing_notifyUserError_gives_one_oops(self):
        job = self.make_job(raise_="user")
        job.fail_notify = True
        self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertEqual(["RuntimeError"],
                         [oops["type"] for oops in self.oopses()])

    def test_failed_sql_fails_the_job_and_the_next_one_runs(self):
        failing_sql = ("SELECT 1/0" if self.database_kind == "postgresql"
                       else "SELECT * FROM no_such_table")
        bad = self.make_job(sql=failing_sql)
        good = self.make_job()
        runner = self.run_jobs(bad, good)
        self.assertEqual(JobStatus.FAILED, bad.status)
        self.assertEqual(JobStatus.COMPLETED, good.status)
        self.assertNote(None, bad)
        self.assertNote("written by the job", good)
        [oops] = self.oopses()
        expected = ("division by zero" if self.database_kind == "postgresql"
                    else "no such table")
        self.assertThat(oops["value"], Contains(expected))
        self.assertEqual(([good], [bad]), (runner.completed_jobs,
                                           runner.incomplete_jobs))

    def test_held_lease_skips_the_job(self):
        job = self.make_job()
        job.acquireLease()
        transaction.commit()
        runner = self.run_jobs(job)
        self.assertEqual((JobStatus.WAITING, 0), (job.status,
                                                  job.attempt_count))
        self.assertEqual((0, [], []), (runner.started, runner.completed_jobs,
                                       runner.incomplete_jobs))
        # Contention is routine: not an INFO line.
        self.assertEqual("", self.logger.getLogBuffer())

    def test_successful_job_costs_two_commits(self):
        job = self.make_job()
        commits = self.useFixture(CommitCounterFixture()).commits
        self.run_jobs(job)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertEqual(2, len(commits))

    def orphan(self, max_retries):
        """A job whose runner died while it was RUNNING (attempt 1)."""
        job = self.make_job(max_retries=max_retries)
        job.acquireLease()
        job.start(manage_transaction=True)
        self.clock.advance(job.lease_duration + timedelta(seconds=1))
        return job

    def test_orphan_with_attempts_left_runs_again(self):
        job = self.orphan(max_retries=1)
        self.assertEqual([job.job_id], [j.job_id for j in DoFooJob.iterReady()])
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertEqual(2, job.attempt_count)
        self.assertEqual([job], runner.completed_jobs)
        self.assertLogged(
            "INFO    NotifyingJob (ID %d) was left RUNNING by a lost runner"
            " (attempt 1); running it again." % job.job_id)

    def test_orphan_without_attempts_left_fails_with_oops(self):
        job = self.orphan(max_retries=0)
        self.run_jobs(job)
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertEqual(1, job.attempt_count)
        self.assertNote(None, job)
        [oops] = self.oopses()
        self.assertEqual("LostRunner", oops["type"])
        self.assertThat(oops["value"], Contains("runner of attempt 1 was lost"))

    def test_runner_logs_no_warnings_for_routine_outcomes(self):
        jobs = [self.make_job(raise_=raise_, max_retries=1)
                for raise_ in (None, "retry", "user", "suspend")]
        self.run_jobs(*jobs)
        self.assertThat(self.logger.getLogBuffer(), Not(Contains("WARNING")))
        self.assertThat(self.logger.getLogBuffer(), Not(Contains("ERROR")))


class TestFencing(OutcomeTestCase):
    """PostgreSQL: a runner that stalled past its lease, whose job another
    runner took over, cannot record its outcome. (SQLite: see
    TestSQLiteWriteLock.)"""

    database_kind = "postgresql"
    __test__ = True

    def test_stale_runner_cannot_overwrite_the_new_attempt(self):
        test = self

        class SlowJob(DoFooJob):
            """Stalls past its lease while another runner reclaims it."""

            def run(self):
                test.clock.advance(self.lease_duration + timedelta(seconds=1))
                # Read nothing here: on SQLite a read would open a
                # transaction holding the write lock the other runner needs.
                thread = threading.Thread(target=test.reclaim_and_complete,
                                          args=(self.known_id,))
                thread.start()
                thread.join(60)

        job = self.make_job(job_class=SlowJob)
        job.known_id = job.job_id
        transaction.commit()
        runner = self.run_jobs(job)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertEqual(2, job.attempt_count)
        self.assertNote(None, job)  # only the new attempt's work counts
        self.assertEqual(([], [job]), (runner.completed_jobs,
                                       runner.incomplete_jobs))
        self.assertEqual([], self.oopses())
        self.assertLogged(
            "WARNING SlowJob (ID %d): attempt 1 was fenced (another runner"
            " took the job over after its lease expired); its outcome and its"
            " database changes were dropped." % job.job_id)


class TestSQLiteWriteLock(OutcomeTestCase):
    """SQLite has no row locks and no second writer: a running job's
    transaction holds the database's write lock from its start, so no
    other runner can take its job over, however long it runs."""

    database_kind = "sqlite"
    __test__ = True

    def test_running_job_holds_the_write_lock(self):
        # SQLite has no row locks and no second writer: a running job's
        # transaction holds the database's write lock from its start, so
        # no other runner can take its job over, however long it runs.
        import sqlite3
        path = self.store.get_database()._filename
        test = self
        seen = []

        class LongJob(DoFooJob):
            def run(self):
                other = sqlite3.connect(path, timeout=0.1)
                try:
                    other.execute("BEGIN IMMEDIATE")
                    seen.append("took the lock")
                except sqlite3.OperationalError as e:
                    seen.append(str(e))
                finally:
                    other.close()

        job = self.make_job(job_class=LongJob)
        self.run_jobs(job)
        self.assertEqual(["database is locked"], seen)
        self.assertEqual(JobStatus.COMPLETED, job.status)


@on_each_database
class TestUnloadableJobs(DatabaseTestCase):
    """A ready job whose row cannot be loaded ends FAILED with a
    JobLoadError OOPS, and the jobs after it run."""

    def run_family(self, job_type):
        bad = self.factory.makeDoFooJob()
        good = self.factory.makeDoFooJob()
        self.store.execute("UPDATE foo_job SET job_type = ? WHERE job = ?",
                           (job_type, bad.job_id))
        bad_id, good_id = bad.job_id, good.job_id
        transaction.commit()
        # The family's base class as the source: it sees every type.
        JobRunner(logger=BufferLogger(), source=FooJobDerived).runAll()
        self.store.invalidate()
        return (self.store.get(Job, bad_id).status,
                self.store.get(Job, good_id).status)

    def assertFailedToLoad(self, statuses, detail):
        self.assertEqual((JobStatus.FAILED, JobStatus.COMPLETED), statuses)
        [oops] = self.oopses()
        self.assertEqual("JobLoadError", oops["type"])
        self.assertThat(oops["value"], Contains(detail))

    def test_a_job_type_with_no_registered_class(self):
        self.assertFailedToLoad(
            self.run_family(FooJobType.DO_NOTHING.value),
            "which no class is registered for")

    def test_a_job_type_the_enumeration_does_not_know(self):
        self.assertFailedToLoad(self.run_family(99),
                                "99 is not a value of FooJobType")


@on_each_database
class TestLogTail(DatabaseTestCase):

    def run_job(self, **behaviour):
        job = self.factory.makeDoFooJob(**behaviour)
        transaction.commit()
        JobRunner([job], logger=BufferLogger()).runAll()
        self.store.invalidate()
        return job

    def test_completed_job_keeps_what_it_logged(self):
        job = self.run_job(say="copied 3 files")
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertThat(job.log, Contains("INFO    copied 3 files"))

    def test_failed_job_keeps_its_log_and_the_oops_carries_it(self):
        job = self.run_job(say="about to fail, password=hunter2",
                           raise_="error")
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertThat(job.log, Contains("about to fail, password=<redacted>"))
        [oops] = self.oopses()
        self.assertThat(oops["log_tail"], Contains("about to fail"))
        self.assertThat(oops["log_tail"], Not(Contains("hunter2")))

    def test_tail_is_bounded(self):
        from jobs.logtail import LogTail
        import logging
        tail = LogTail(max_chars=100)
        with tail:
            for i in range(50):
                logging.getLogger("x").info("line %d", i)
        self.assertLessEqual(len(tail.text()), 100)
        self.assertThat(tail.text(), Contains("line 49"))
        self.assertThat(tail.text(), Not(Contains("line 1\n")))


@on_each_database
class TestProgress(DatabaseTestCase):

    def test_tree_sums_children_and_survives_failure(self):
        import json
        job = self.factory.makeDoFooJob(
            progress=[[1, 2, "copying", "copy"], [3, 3, None, "index"]],
            raise_="error")
        transaction.commit()
        JobRunner([job], logger=BufferLogger()).runAll()
        self.store.invalidate()
        self.assertEqual(JobStatus.FAILED, job.status)
        tree = json.loads(job.progress)
        self.assertEqual((4, 5), (tree["current"], tree["total"]))
        self.assertEqual({"current": 1, "total": 2, "status": "copying"},
                         tree["children"]["copy"])

    def test_draw(self):
        from jobs.progress import ProgressTree, draw
        tree = ProgressTree()
        tree.set(1, 4, "working", ("a",))
        self.assertEqual(
            "job          [##......] 1/4\n"
            "  a          [##......] 1/4 working",
            draw(tree.to_json(), width=8))


class TestLostConnection(DatabaseTestCase):
    """PostgreSQL: a job whose connection dies is not failed for it."""

    database_kind = "postgresql"
    __test__ = True

    def test_lost_connection_stops_the_run_and_leaves_the_job_running(self):
        from storm.exceptions import DisconnectionError
        # The job ends its own connection, as a restart would.
        doomed = self.factory.makeDoFooJob(
            note="rolled back", sql="SELECT pg_terminate_backend(pg_backend_pid())")
        after = self.factory.makeDoFooJob()
        transaction.commit()
        runner = JobRunner([doomed, after], logger=BufferLogger())
        error = self.assertRaises(DisconnectionError, runner.runAll)
        transaction.abort()  # Storm reconnects on the next statement
        self.store.invalidate()
        # Left as a crash leaves it: RUNNING, attempt 1, its work gone;
        # the lease hands it to the next run. The run stopped there, and
        # says which claims it never started, for its caller to give back
        # once reconnected (a worker does).
        self.assertEqual((JobStatus.RUNNING, 1, None),
                         (doomed.job.status, doomed.job.attempt_count,
                          doomed.context.foo.note))
        self.assertEqual([(after.job_id, 1)], error.unstarted_claims)
        self.assertEqual(1, claims.release(self.store, error.unstarted_claims))
        transaction.commit()
        self.assertEqual((JobStatus.WAITING, 0),
                         (after.job.status, after.job.attempt_count))
        self.assertEqual([], runner.oops_ids)
        self.assertEqual([], self.oopses())


class TestOopsBeforeFailed(DatabaseTestCase):
    """A runner killed between filing a report and committing FAILED
    leaves a duplicate report at worst, never a FAILED job without one."""

    database_kind = "postgresql"
    __test__ = True

    def test_the_report_is_filed_while_the_job_is_still_running(self):
        import psycopg2

        from jobs.database import dsn
        job = self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        seen = []
        runner = JobRunner([job], BufferLogger())
        raising = runner.error_reporter.raising

        def observing(*args, **kwargs):
            # What another connection sees when the report is written.
            connection = psycopg2.connect(dsn(self.store))
            self.addCleanup(connection.close)
            cursor = connection.cursor()
            cursor.execute("SELECT status FROM job WHERE id = %s",
                           (job.job_id,))
            seen.append(cursor.fetchone()[0])
            return raising(*args, **kwargs)

        runner.error_reporter.raising = observing
        runner.runAll()
        self.assertEqual([JobStatus.RUNNING.value], seen)
        self.store.invalidate()
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertEqual(runner.oops_ids, [r["id"] for r in self.oopses()])
