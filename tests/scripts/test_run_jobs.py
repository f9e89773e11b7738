"""run_jobs.py and JobCronScript: in-process, and a few real subprocesses."""

import os
import subprocess
import sys
import time

import psycopg2
import transaction
from testtools.matchers import Contains, Not

from jobs.database import connect, disconnect
from jobs.interfaces.job import IJobSource, JobStatus
from jobs.log import BufferLogger, DevNullLogger
from jobs.runner import JobCronScript
from jobs.scripts.lock import LockFile
from jobs.testing.fixtures import _dsn
from jobs.testing.foojob import DoBarJob, IDoFooJobSource
from jobs.testing.script import ROOT, run_script
from jobs.testing.testcase import DatabaseTestCase, on_each_database

RUN_JOBS = "cronscripts/run_jobs.py"


class INobodysJobSource(IJobSource):
    """A source interface no utility provides."""


EXTRA_SECTIONS = """
[broken_import]
source_interface: no.such.module.IFooSource

[no_utility]
source_interface: tests.scripts.test_run_jobs.INobodysJobSource

[bad_role]
dbuser: no_such_role_anywhere
source_interface: jobs.testing.foojob.IDoFooJobSource
"""


@on_each_database
class TestJobCronScriptInProcess(DatabaseTestCase):

    config_extra = EXTRA_SECTIONS

    def make_script(self, *sections, logger=None):
        script = JobCronScript(test_args=list(sections),
                               commandline_config=True)
        script.logger = logger or BufferLogger()
        return script

    def test_runs_a_pending_job_to_completed(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        script = self.make_script("do_foo")
        script.logger = DevNullLogger()
        self.assertEqual(0, script.main())
        self.assertEqual(JobStatus.COMPLETED, job.context.job.status)

    def test_logs_summary_per_class(self):
        self.factory.makeDoFooJob()
        self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        script = self.make_script("do_foo")
        self.assertEqual(0, script.lock_and_run())
        log = script.logger.getLogBuffer()
        self.assertThat(log, Contains("INFO    Ran 1 DoFooJob jobs."))
        self.assertThat(log, Contains(
            "INFO    1 DoFooJob jobs did not complete."))
        self.assertThat(log, Contains("INFO    Creating lockfile: %s"
                                      % os.path.join(self.config.lock_dir,
                                                     "jobs-run_jobs-do_foo.lock")))
        [oops] = self.oopses()
        self.assertEqual("T-do_foo", oops["reporter"])

    def test_empty_queue(self):
        script = self.make_script("do_foo")
        self.assertEqual(0, script.lock_and_run())
        self.assertThat(script.logger.getLogBuffer(),
                        Contains("INFO    No jobs to run."))

    def test_sections_run_in_turn(self):
        foo_job = self.factory.makeDoFooJob()
        bar_job = self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        script = self.make_script("do_foo", "do_bar")
        self.assertEqual(0, script.lock_and_run())
        self.assertEqual(JobStatus.COMPLETED, foo_job.status)
        self.assertEqual(JobStatus.COMPLETED, bar_job.status)
        log = script.logger.getLogBuffer()
        self.assertThat(log, Contains("Ran 1 DoBarJob jobs."))

    def test_bad_sections_exit_2_and_others_still_run(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        script = self.make_script(
            "nope", "broken_import", "no_utility", "do_foo")
        self.assertEqual(2, script.lock_and_run())
        self.assertEqual(JobStatus.COMPLETED, job.status)
        log = script.logger.getLogBuffer()
        self.assertThat(log, Contains(
            "ERROR   Unknown job section 'nope' in %s" % self.config.path))
        self.assertThat(log, Contains(
            "ERROR   Section broken_import: cannot import source_interface "
            "no.such.module.IFooSource: No module named 'no'"))
        self.assertThat(log, Contains(
            "ERROR   Section no_utility: no utility is registered for "
            "tests.scripts.test_run_jobs.INobodysJobSource"))
        self.assertThat(log, Not(Contains("Traceback")))

    def test_lock_held_exits_1(self):
        lock = LockFile(os.path.join(self.config.lock_dir,
                                     "jobs-run_jobs-do_foo.lock"),
                        DevNullLogger())
        self.assertTrue(lock.acquire())
        self.addCleanup(lock.release)
        job = self.factory.makeDoFooJob()
        transaction.commit()
        script = self.make_script("do_foo")
        self.assertEqual(1, script.lock_and_run())
        self.assertThat(script.logger.getLogBuffer(), Contains(
            "INFO    Lockfile %s in use" % lock.path))
        self.assertEqual(JobStatus.WAITING, job.status)

    def test_unwritable_lock_dir_is_a_section_error(self):
        import os
        # A file where the lock folder should be: not creatable, even as root.
        os.makedirs(os.path.dirname(self.config.lock_dir), exist_ok=True)
        with open(self.config.lock_dir, "w") as f:
            f.write("not a folder")
        self.addCleanup(os.remove, self.config.lock_dir)
        script = self.make_script("do_foo")
        self.assertEqual(2, script.lock_and_run())
        self.assertThat(script.logger.getLogBuffer(), Contains(
            "ERROR   Section do_foo: cannot create its lock file in %s"
            % self.config.lock_dir))
        self.assertThat(script.logger.getLogBuffer(), Not(Contains("Traceback")))

    def test_custom_cron_script_subclass(self):
        class RunDoFoo(JobCronScript):
            config_name = "do_foo"
            source_interface = IDoFooJobSource

        job = self.factory.makeDoFooJob()
        transaction.commit()
        script = RunDoFoo(test_args=[], name="run_do_foo")
        script.logger = BufferLogger()
        self.assertEqual(0, script.lock_and_run())
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertThat(script.logger.getLogBuffer(),
                        Contains("jobs-run_do_foo-do_foo.lock"))

    def test_max_jobs_budget_stops_claiming_and_logs_the_summary(self):
        jobs = [self.factory.makeDoFooJob() for _ in range(5)]
        transaction.commit()
        script = self.make_script("--max-jobs", "2", "--batch-size", "10",
                                  "do_foo")
        self.assertEqual(0, script.lock_and_run())
        self.store.invalidate()
        self.assertEqual([JobStatus.COMPLETED] * 2 + [JobStatus.WAITING] * 3,
                         [job.status for job in jobs])
        log = script.logger.getLogBuffer()
        self.assertThat(log, Contains("INFO    Budget reached: stopped claiming."))
        self.assertThat(log, Contains("INFO    Ran 2 DoFooJob jobs."))

    def test_usage_error_exits_2(self):
        script = JobCronScript(test_args=[], commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(2, script.lock_and_run())

    def test_database_role(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        script = self.make_script("bad_role")
        code = script.lock_and_run()
        if self.database_kind == "sqlite":
            # SQLite has no roles: dbuser is ignored.
            self.assertEqual(0, code)
            self.assertEqual(JobStatus.COMPLETED, job.status)
        else:
            self.assertEqual(2, code)
            log = script.logger.getLogBuffer()
            self.assertThat(log, Contains(
                "ERROR   Section bad_role: cannot run as database role"
                " no_such_role_anywhere (see `jobs db roles`): Cannot connect"
                " to the database postgres://no_such_role_anywhere@"))
            self.assertThat(log, Contains(
                'FATAL: role "no_such_role_anywhere" does not exist\n'))
            self.assertEqual(JobStatus.WAITING, job.status)

    def test_missing_schema_exits_2(self):
        import fixtures
        folder = self.useFixture(fixtures.TempDir()).path
        uri = "sqlite:%s/empty.db" % folder
        disconnect()
        self.useFixture(fixtures.EnvironmentVariable("JOBS_DATABASE_URI", uri))
        script = self.make_script("do_foo")
        self.assertEqual(2, script.lock_and_run())
        self.assertThat(script.logger.getLogBuffer(), Contains(
            "ERROR   The database has no jobs schema"))
        disconnect()
        connect(self.db.uri)


class TestDatabaseRoles(DatabaseTestCase):
    """PostgreSQL only: SQLite has no roles (see test_database_role)."""

    database_kind = "postgresql"
    __test__ = True

    def test_job_runs_as_the_sections_role(self):
        job = self.factory.makeDoFooJob(
            sql="UPDATE foo SET note = current_user")
        transaction.commit()
        script = JobCronScript(test_args=["do_foo"], commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(0, script.lock_and_run())
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertEqual("dofoo", job.context.foo.note)
        # The script went back to the login role's store afterwards.
        current, session = self.store.execute(
            "SELECT current_user, session_user").get_one()
        self.assertEqual(session, current)
        self.assertNotEqual("dofoo", session)

    def test_a_database_gone_before_the_role_connects_is_a_lost_database(self):
        # The login connection exists (the schema was checked); the role's
        # cannot be made because the server is gone: not the role's fault.
        from jobs.config import get_config
        script = self.make_script("do_foo")
        script.config = get_config()
        disconnect()
        self.addCleanup(connect, self.db.uri)
        self.addCleanup(disconnect)
        connect("postgres://127.0.0.1:1/nowhere")
        self.assertEqual(2, script.run_section(script.config, "do_foo"))
        log = script.logger.getLogBuffer()
        self.assertThat(log, Contains(
            "ERROR   Section do_foo: lost the database connection ("))
        self.assertThat(log, Not(Contains("database role")))

    make_script = TestJobCronScriptInProcess.make_script


@on_each_database
class TestRunJobsSubprocess(DatabaseTestCase):

    def test_one_pending_job(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        code, out, err = run_script(RUN_JOBS, ["do_foo"])
        self.assertEqual(0, code, err)
        self.assertThat(err, Contains("INFO    Ran 1 DoFooJob jobs."))
        self.assertRegex(
            err.splitlines()[0],
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO    Creating lockfile: ")
        self.store.invalidate()
        self.assertEqual(JobStatus.COMPLETED, job.status)

    def test_lock_held_elsewhere(self):
        lock = LockFile(os.path.join(self.config.lock_dir,
                                     "jobs-run_jobs-do_foo.lock"),
                        DevNullLogger())
        self.assertTrue(lock.acquire())
        self.addCleanup(lock.release)
        code, out, err = run_script(RUN_JOBS, ["do_foo", "do_bar"])
        self.assertEqual(1, code, err)
        self.assertThat(err, Contains("INFO    Lockfile %s in use" % lock.path))
        # do_bar has its own lock and ran.
        self.assertThat(err, Contains("jobs-run_jobs-do_bar.lock"))
        self.assertThat(err, Contains("No jobs to run."))

    def test_unknown_section(self):
        code, out, err = run_script(RUN_JOBS, ["no_such_section"])
        self.assertEqual(2, code)
        self.assertThat(err, Contains(
            "ERROR   Unknown job section 'no_such_section'"))
        self.assertThat(err, Not(Contains("Traceback")))
        # The ERROR's OOPS report is indexed, and the run's row in the
        # worker table is deleted (on SQLite the index row's transaction
        # was left open, holding the lock the deletion waited 30 s for).
        self.assertThat(err, Not(Contains("could not delete its row")))
        [oops] = self.oopses()
        transaction.abort()
        self.assertEqual(
            ([oops["id"]], 0),
            ([row[0] for row in self.store.execute(
                "SELECT id FROM oops_report")],
             self.store.execute("SELECT count(*) FROM worker").get_one()[0]))

    def test_usage(self):
        code, out, err = run_script(RUN_JOBS, [])
        self.assertEqual(2, code)
        # One line: the error, naming the program.
        self.assertEqual(["run_jobs.py: error: name at least one SECTION (or"
                          " --schedules)"], err.splitlines())
        code, out, err = run_script(RUN_JOBS, ["--help"])
        self.assertEqual(0, code)
        self.assertThat(out, Contains("Exit status: 0 when every section ran"))


class BlockedRunTestCase(DatabaseTestCase):
    """Runs `run_jobs.py` in a real process held inside its job.

    The job waits for a PostgreSQL advisory lock the test holds; "the run
    is inside its job" is then an event the test can wait for (the lock
    shows as not granted), not a guess with sleep.
    """

    database_kind = "postgresql"
    LOCK_KEY = 4242

    def hold_advisory_lock(self):
        """Hold the lock; return the SQL a job runs to block on it."""
        self.blocker = psycopg2.connect(_dsn(self.db.uri))
        self.blocker.autocommit = True
        self.addCleanup(self.blocker.close)
        self.blocker.cursor().execute(
            "SELECT pg_advisory_lock(%s)", (self.LOCK_KEY,))
        return "SELECT pg_advisory_lock(%d)" % self.LOCK_KEY

    def release_advisory_lock(self):
        self.blocker.cursor().execute(
            "SELECT pg_advisory_unlock(%s)", (self.LOCK_KEY,))

    def lock_awaited(self):
        """True while a job waits for the lock: a run is inside it."""
        cursor = self.blocker.cursor()
        # This database's only: other checkouts may share the server.
        cursor.execute("SELECT count(*) FROM pg_locks WHERE"
                       " locktype = 'advisory' AND NOT granted"
                       " AND database = (SELECT oid FROM pg_database"
                       " WHERE datname = current_database())")
        return cursor.fetchone()[0] > 0

    def start_blocked_run(self, section):
        """Start run_jobs.py `section`; return once it waits in its job."""
        process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, RUN_JOBS), section],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(process.kill)
        deadline = time.monotonic() + 60
        while True:
            if self.lock_awaited():
                return process
            if process.poll() is not None:
                self.fail("run_jobs.py ended early: %s"
                          % process.stderr.read())
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)


class TestConcurrentRuns(BlockedRunTestCase):
    """Real overlapping runs of run_jobs.py."""

    __test__ = True

    def test_same_section_waits_on_the_lock_other_sections_run(self):
        stuck = self.factory.makeDoFooJob(sql=self.hold_advisory_lock())
        bar = self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        first = self.start_blocked_run("do_foo")
        code, out, err = run_script(RUN_JOBS, ["do_foo"])
        self.assertEqual(1, code, err)
        self.assertThat(err, Contains("in use"))
        code, out, err = run_script(RUN_JOBS, ["do_bar"])
        self.assertEqual(0, code, err)
        self.assertThat(err, Contains("Ran 1 DoBarJob jobs."))
        self.release_advisory_lock()
        out, err = first.communicate(timeout=60)
        self.assertEqual(0, first.returncode, err)
        self.assertThat(err, Contains("Ran 1 DoFooJob jobs."))
        self.store.invalidate()
        self.assertEqual(JobStatus.COMPLETED, stuck.status)
        self.assertEqual(JobStatus.COMPLETED, bar.status)


class TestKilledRunner(BlockedRunTestCase):
    """A runner killed with SIGKILL inside a job: the next run reclaims it."""

    __test__ = True

    def test_orphan_is_reclaimed_as_a_new_attempt(self):
        job = self.factory.makeDoFooJob(sql=self.hold_advisory_lock())
        job.job.max_retries = 1
        transaction.commit()
        victim = self.start_blocked_run("do_foo")
        victim.kill()
        victim.communicate(timeout=60)
        # The killed run's session may linger until it notices; once the
        # lock is free its job no longer waits.
        self.release_advisory_lock()
        self.store.invalidate()
        self.assertEqual((JobStatus.RUNNING, 1),
                         (job.status, job.attempt_count))
        transaction.abort()
        # The lease runs out: time passes on the database clock.
        self.blocker.cursor().execute(
            "UPDATE job SET lease_expires = lease_expires"
            " - interval '10 minutes' WHERE id = %s", (job.job_id,))
        code, out, err = run_script(RUN_JOBS, ["do_foo"])
        self.assertEqual(0, code, err)
        self.assertThat(err, Contains(
            "DoFooJob (ID %d) was left RUNNING by a lost runner (attempt 1);"
            " running it again." % job.job_id))
        self.assertThat(err, Contains("Ran 1 DoFooJob jobs."))
        self.store.invalidate()
        self.assertEqual((JobStatus.COMPLETED, 2),
                         (job.status, job.attempt_count))


@on_each_database
class TestWarningsBecomeOopses(DatabaseTestCase):

    def test_a_warning_logged_by_a_job_files_an_oops(self):
        job = self.factory.makeDoFooJob(warn="the disk is nearly full")
        transaction.commit()
        code, out, err = run_script(RUN_JOBS, ["do_foo"])
        self.assertEqual(0, code, err)
        self.assertThat(err, Contains("WARNING the disk is nearly full"))
        [oops] = self.oopses()
        self.assertEqual(("LogMessage", "the disk is nearly full"),
                         (oops["type"], oops["value"]))
        self.assertEqual("T-run_jobs", oops["reporter"])
        self.store.invalidate()
        self.assertEqual(JobStatus.COMPLETED, job.status)
