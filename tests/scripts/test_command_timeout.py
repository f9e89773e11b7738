"""The `jobs` command's queries carry a statement_timeout ([database]
command_statement_timeout), so an operator's query never outlives its
client; the runner's connections do not get it."""

import os
import subprocess
import sys
import time

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.interfaces.job import JobStatus
from jobs.testing.testcase import DatabaseTestCase


class TestCommandStatementTimeout(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def use_timeout(self, seconds):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, "timeout.conf")
        with open(path, "w") as f:
            f.write("[meta]\nextends: %s\n\n[database]\n"
                    "command_statement_timeout: %s\n"
                    % (os.path.relpath(self.config.path, tmp), seconds))
        self.useFixture(fixtures.EnvironmentVariable("JOBS_CONFIG", path))

    def jobs(self, *argv):
        process = subprocess.run(
            [sys.executable, "-m", "jobs"] + list(argv), capture_output=True,
            text=True, timeout=60, stdin=subprocess.DEVNULL)
        return process.returncode, process.stdout, process.stderr

    def test_a_command_blocked_past_its_timeout_is_cancelled(self):
        job_id = self.factory.makeDoFooJob().job_id
        transaction.commit()
        self.use_timeout(0.5)
        # Another session holds the job's row lock (a long transaction):
        # `jobs cancel` waits for it, at most its statement_timeout (and
        # not [database] lock_timeout's 60 s).
        self.store.execute("SELECT id FROM job WHERE id = ? FOR UPDATE",
                           (job_id,))
        started = time.monotonic()
        code, out, err = self.jobs("cancel", str(job_id))
        elapsed = time.monotonic() - started
        transaction.abort()
        self.assertEqual(2, code, out + err)
        self.assertThat(err, Contains(
            "canceling statement due to statement timeout"))
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertLess(elapsed, 30)
        status, = self.store.execute("SELECT status FROM job WHERE id = ?",
                                     (job_id,)).get_one()
        self.assertEqual(JobStatus.WAITING.value, status)

    def test_the_timeout_does_not_touch_a_command_within_it(self):
        job_id = self.factory.makeDoFooJob().job_id
        transaction.commit()
        self.use_timeout(30)
        code, out, err = self.jobs("cancel", str(job_id))
        self.assertEqual(0, code, err)
        status, = self.store.execute("SELECT status FROM job WHERE id = ?",
                                     (job_id,)).get_one()
        self.assertEqual(JobStatus.CANCELLED.value, status)

    def test_a_bad_timeout_is_one_line(self):
        self.use_timeout(-1)
        code, out, err = self.jobs("status")
        self.assertEqual(2, code)
        self.assertEqual(
            ["jobs: %s: [database] command_statement_timeout: -1 is outside"
             " its range: 0.001 to 31,536,000 seconds (a year)."
             % os.environ["JOBS_CONFIG"]], err.splitlines())
