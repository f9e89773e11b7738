"""The script base: options, log format and levels, log files, lock files."""

import io
import logging
import os

import fixtures
from testtools.matchers import Contains, MatchesRegex, Not

from jobs.log import BufferLogger
from jobs.scripts import Script
from jobs.scripts.lock import LockFile
from jobs.scripts.logger import level_from_options
from jobs.testing.testcase import TestCase


class Chatty(Script):
    """Logs one line per level, returns the exit code it is given."""

    def add_my_options(self):
        self.parser.add_argument("--code", type=int, default=0)

    def main(self):
        for level in (logging.DEBUG, logging.INFO, logging.WARNING):
            self.logger.log(level, "a %s line", logging.getLevelName(level))
        return self.options.code


class Broken(Script):
    def main(self):
        raise RuntimeError("boom")


class TestScript(TestCase):

    def run_captured(self, script):
        stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stderr", stderr))
        return script.run(), stderr.getvalue()

    def test_default_level_is_info_with_utc_format(self):
        code, err = self.run_captured(Chatty(test_args=["--code", "3"]))
        self.assertEqual(3, code)
        lines = err.splitlines()
        self.assertEqual(2, len(lines), err)
        self.assertThat(lines[0], MatchesRegex(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO    a INFO line$"))
        self.assertThat(lines[1], Contains("WARNING a WARNING line"))

    def test_verbose_and_quiet(self):
        code, err = self.run_captured(Chatty(test_args=["-v"]))
        self.assertThat(err, Contains("DEBUG   a DEBUG line"))
        code, err = self.run_captured(Chatty(test_args=["-q"]))
        self.assertThat(err, Not(Contains("INFO")))
        self.assertThat(err, Contains("a WARNING line"))
        self.assertEqual(logging.DEBUG, level_from_options(5, 0))
        self.assertEqual(logging.CRITICAL, level_from_options(0, 9))

    def test_log_file(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "x.log")
        self.run_captured(Chatty(test_args=["--log-file", "DEBUG:" + path]))
        with open(path) as f:
            text = f.read()
        self.assertThat(text, Contains("DEBUG   a DEBUG line"))
        self.assertThat(text, Contains("INFO    a INFO line"))

    def test_bad_log_file_is_a_usage_error(self):
        code, err = self.run_captured(
            Chatty(test_args=["--log-file", "LOUD:/tmp/x.log"]))
        self.assertEqual(2, code)
        self.assertThat(err, Contains("unknown log level 'LOUD'"))
        code, err = self.run_captured(
            Chatty(test_args=["--log-file", "INFO:/nonexistent/dir/x.log"]))
        self.assertEqual(2, code)
        self.assertThat(err, Contains("cannot append to /nonexistent/dir/x.log"))

    def test_unknown_option_is_a_usage_error(self):
        code, err = self.run_captured(Chatty(test_args=["--bogus"]))
        self.assertEqual(2, code)
        self.assertThat(err, Contains("unrecognized arguments: --bogus"))

    def test_unhandled_exception_is_logged_and_exits_1(self):
        script = Broken(test_args=[])
        script.logger = BufferLogger()
        self.assertEqual(1, script.run())
        self.assertThat(script.logger.getLogBuffer(), Contains(
            "ERROR   Unhandled exception in broken"))
        self.assertThat(script.logger.getLogBuffer(), Contains(
            "RuntimeError: boom"))

    def test_lock_and_run_holds_the_scripts_lock(self):
        lock_dir = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable("JOBS_LOCK_DIR", lock_dir))
        held = LockFile(os.path.join(lock_dir, "jobs-chatty.lock"),
                        BufferLogger())
        self.assertTrue(held.acquire())
        script = Chatty(test_args=[])
        script.logger = BufferLogger()
        self.assertEqual(1, script.lock_and_run())
        self.assertThat(script.logger.getLogBuffer(), Contains("in use"))
        held.release()
        script = Chatty(test_args=["--code", "0"])
        script.logger = BufferLogger()
        self.assertEqual(0, script.lock_and_run())


class TestLockFile(TestCase):

    def test_second_holder_is_refused_until_release(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            "sub", "x.lock")
        logger = BufferLogger()
        first, second = LockFile(path, logger), LockFile(path, logger)
        self.assertTrue(first.acquire())
        self.assertFalse(second.acquire())
        first.release()
        self.assertTrue(second.acquire())
        second.release()
        self.assertEqual(
            "INFO    Creating lockfile: %s\n" % path * 2
            + "INFO    Lockfile %s in use\n" % path
            + "INFO    Creating lockfile: %s\n" % path,
            logger.getLogBuffer())
