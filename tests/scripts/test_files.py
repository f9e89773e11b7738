"""Files (issue 14, item 4): OOPS reports private whatever the umask, no
``.tmp`` left by a failed write, lock files never followed through a
symbolic link.

Real files in a temporary folder; the write failures are made by the
serializer the repository writes with (a disk that fills up, a signal
that interrupts the write).
"""

import glob
import os
import stat

import fixtures
import transaction
from testtools import TestCase
from testtools.matchers import Contains, Not

from jobs.errorlog import ErrorReporter
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.runner import JobCronScript
from jobs.testing.testcase import DatabaseTestCase, on_each_database


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class Umask(fixtures.Fixture):
    """The process's umask is `umask` within the fixture."""

    def __init__(self, umask):
        super().__init__()
        self.umask = umask

    def _setUp(self):
        self.addCleanup(os.umask, os.umask(self.umask))


def fail():
    raise ValueError("what the job raised")


class FailingSerializer:
    """Writes half a report, then raises `error`."""

    def __init__(self, error):
        self.error = error

    def write(self, report, f):
        f.write(b"half a report")
        raise self.error


class TestOopsFiles(TestCase):

    def setUp(self):
        super().setUp()
        self.error_dir = os.path.join(
            self.useFixture(fixtures.TempDir()).path, "errors")

    def report(self, reporter=None):
        reporter = reporter or ErrorReporter(self.error_dir, "T")
        try:
            fail()
        except ValueError:
            return reporter.raising()

    def test_reports_are_0600_in_0700_folders_whatever_the_umask(self):
        for umask in (0o022, 0o000):
            with Umask(umask):
                report = self.report()
            [path] = glob.glob(os.path.join(self.error_dir, "*",
                                            report["id"]))
            self.assertEqual(
                (0o600, 0o700, 0o700),
                (mode(path), mode(os.path.dirname(path)),
                 mode(self.error_dir)), oct(umask))

    def test_an_interrupted_write_leaves_no_tmp_file(self):
        # SIGTERM's KeyboardInterrupt (or SystemExit) in the middle of
        # writing: the worker stops; its half-written report goes.
        reporter = ErrorReporter(self.error_dir, "T")
        self.report(reporter)
        reporter._repo.serializer = FailingSerializer(KeyboardInterrupt())
        self.assertRaises(KeyboardInterrupt, self.report, reporter)
        self.assertEqual([], glob.glob(os.path.join(self.error_dir, "*",
                                                    "*.tmp")))
        self.assertEqual(1, len(glob.glob(os.path.join(
            self.error_dir, "*", "OOPS-*"))))

    def test_a_failed_write_leaves_no_tmp_file(self):
        # The disk fills up: logged, the caller goes on, nothing left.
        reporter = ErrorReporter(self.error_dir, "T")
        self.report(reporter)
        reporter._repo.serializer = FailingSerializer(
            OSError(28, "No space left on device"))
        with self.assertLogs("jobs.errorlog", "ERROR") as logged:
            self.assertIsNone(self.report(reporter)["id"])
        self.assertThat(logged.output[0], Contains("No space left on device"))
        self.assertEqual([], glob.glob(os.path.join(self.error_dir, "*",
                                                    "*.tmp")))

    def test_a_killed_writers_tmp_file_is_removed_by_the_next_reporter(
            self):
        # A writer killed mid-write (kill -9, os._exit at the end of a
        # grace period) cannot clean up: the next reporter removes its
        # .tmp once it is an hour old, and leaves a fresh one alone.
        self.report()
        [day] = glob.glob(os.path.join(self.error_dir, "2*"))
        stale, fresh = (os.path.join(day, "OOPS-%s.tmp" % name)
                        for name in ("stale", "fresh"))
        for path in (stale, fresh):
            open(path, "wb").close()
        hours_ago = os.stat(fresh).st_mtime - 2 * 3600
        os.utime(stale, (hours_ago, hours_ago))
        self.report()
        self.assertEqual([fresh], glob.glob(os.path.join(day, "*.tmp")))

    def test_a_tmp_path_that_is_a_symlink_is_not_followed(self):
        # A planted link where the next report's .tmp goes: refused
        # (O_EXCL | O_NOFOLLOW), logged; the link's target untouched.
        reporter = ErrorReporter(self.error_dir, "T")
        self.report(reporter)
        target = os.path.join(self.error_dir, "target")
        with open(target, "w") as f:
            f.write("precious")
        [day] = glob.glob(os.path.join(self.error_dir, "2*"))
        real = reporter._repo.publish

        def planted(report, now=None):
            report_id = real(dict(report), now)[0]
            os.unlink(os.path.join(day, report_id))
            os.symlink(target, os.path.join(day, report_id + ".tmp"))
            return real(report, now)

        reporter._repo.publish = planted
        with self.assertLogs("jobs.errorlog", "ERROR"):
            self.assertIsNone(self.report(reporter)["id"])
        with open(target) as f:
            self.assertEqual("precious", f.read())


@on_each_database
class TestLockFiles(DatabaseTestCase):

    def run_section(self):
        script = JobCronScript(test_args=["do_foo"], commandline_config=True)
        script.logger = BufferLogger()
        code = script.lock_and_run()
        self.store.invalidate()
        return code, script.logger.getLogBuffer()

    def lock_path(self):
        os.makedirs(self.config.lock_dir, exist_ok=True)
        return os.path.join(self.config.lock_dir, "jobs-run_jobs-do_foo.lock")

    def assertRefused(self, why):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        code, log = self.run_section()
        self.assertEqual(2, code, log)
        self.assertThat(log, Contains(
            "ERROR   Section do_foo: cannot create its lock file in %s: %s"
            "\n" % (self.config.lock_dir, why)))
        self.assertThat(log, Not(Contains("Traceback")))
        self.assertEqual(JobStatus.WAITING, job.status)

    def test_a_lock_file_replaced_by_a_symlink_is_refused(self):
        path = self.lock_path()
        target = os.path.join(self.useFixture(fixtures.TempDir()).path,
                              "precious")
        with open(target, "w") as f:
            f.write("precious data")
        os.symlink(target, path)
        self.assertRefused("%s is a symbolic link, not a lock file: refused"
                           " (remove it)." % path)
        with open(target) as f:
            self.assertEqual("precious data", f.read())

    def test_a_lock_path_that_is_not_a_plain_file_is_refused(self):
        path = self.lock_path()
        os.mkfifo(path)
        self.assertRefused("%s is not a plain file: refused as a lock file."
                           % path)

    def test_a_plain_lock_file_is_used(self):
        # The control: the same path as a file works, and holds the pid.
        path = self.lock_path()
        with open(path, "w") as f:
            f.write("12345\n")
        job = self.factory.makeDoFooJob()
        transaction.commit()
        code, log = self.run_section()
        self.assertEqual(0, code, log)
        self.assertEqual(JobStatus.COMPLETED, job.status)
        with open(path) as f:
            self.assertEqual("%d\n" % os.getpid(), f.read())


class TestScriptLockFile(TestCase):
    """The script base (custom cron scripts) refuses the same way."""

    def test_a_scripts_lock_file_replaced_by_a_symlink_is_refused(self):
        from tests.scripts.test_script_base import Chatty
        lock_dir = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable("JOBS_LOCK_DIR",
                                                     lock_dir))
        target = os.path.join(lock_dir, "precious")
        with open(target, "w") as f:
            f.write("precious data")
        path = os.path.join(lock_dir, "jobs-chatty.lock")
        os.symlink(target, path)
        script = Chatty(test_args=["--code", "0"])
        script.logger = BufferLogger()
        self.assertEqual(2, script.lock_and_run())
        log = script.logger.getLogBuffer()
        self.assertThat(log, Contains(
            "ERROR   Cannot take the lock file %s: %s is a symbolic link, not"
            " a lock file: refused (remove it).\n" % (path, path)))
        self.assertThat(log, Not(Contains("Traceback")))
        with open(target) as f:
            self.assertEqual("precious data", f.read())
