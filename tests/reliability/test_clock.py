"""Leases and schedules follow the database's clock, not the host's.

A runner on a host whose clock is 10 minutes ahead (or behind) runs
``run_jobs.py`` under `tests.reliability.skewed_clock`. Were it to judge
leases by its own clock it would steal a job whose 5-minute lease another
runner holds, start a job due in 5 minutes, or leave an orphan alone.

(`FrozenClockFixture` cannot stand in for the skewed host: it moves the
database's "now" itself, for every runner in the process.)
"""

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import transaction
from testtools.matchers import Contains

from jobs.interfaces.job import JobStatus
from jobs.testing.script import ROOT
from tests.reliability.fleet import RUN_JOBS, sections
from tests.scripts.test_run_jobs import BlockedRunTestCase

SKEW = 600
# reliable_0: the honest runner, leases of 5 minutes one job at a time
# (Launchpad's way); reliable_1: the skewed runner, which claims.
SECTIONS = sections([{"batch_size": 0}, {"batch_size": 5}])


class TestSkewedHostClock(BlockedRunTestCase):

    __test__ = True
    config_extra = SECTIONS

    def run_skewed(self, seconds):
        """One ``run_jobs.py reliable_1`` on a host `seconds` off; check
        that its clock really was off; return its log."""
        result = subprocess.run(
            [sys.executable, "-m", "tests.reliability.skewed_clock",
             str(seconds), RUN_JOBS, "reliable_1"], cwd=ROOT,
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
            timeout=120)
        self.assertEqual(0, result.returncode, result.stderr)
        stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ", result.stderr)
        logged = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")
        skew = (logged.replace(tzinfo=timezone.utc)
                - self.database_now()).total_seconds()
        self.assertAlmostEqual(seconds, skew, delta=60)
        return result.stderr

    def database_now(self):
        now = self.store.execute(
            "SELECT statement_timestamp()").get_one()[0]
        transaction.abort()
        return now

    def job_state(self, job):
        self.store.invalidate()
        state = (job.job.status, job.job.attempt_count)
        transaction.abort()
        return state

    def executions(self, job):
        count = self.store.execute(
            "SELECT count(*) FROM job_execution WHERE job = ?",
            (job.job_id,)).get_one()[0]
        transaction.abort()
        return count

    def test_runner_ahead_cannot_take_a_held_lease(self):
        job = self.factory.makeDoFooJob(sql=self.hold_advisory_lock(),
                                        record=True)
        job.job.max_retries = 5
        transaction.commit()
        honest = self.start_blocked_run("reliable_0")
        # Its lease has 5 minutes left: 5 minutes past, on the skewed
        # host's clock.
        log = self.run_skewed(SKEW)
        self.assertThat(log, Contains("No jobs to run."))
        self.assertEqual((JobStatus.RUNNING, 1), self.job_state(job))
        self.release_advisory_lock()
        out, err = honest.communicate(timeout=60)
        self.assertEqual(0, honest.returncode, err)
        self.assertEqual((JobStatus.COMPLETED, 1), self.job_state(job))
        self.assertEqual(1, self.executions(job))

    def test_runner_ahead_does_not_start_a_job_before_its_time(self):
        job = self.factory.makeDoFooJob(record=True)
        self.store.execute(
            "UPDATE job SET scheduled_start = statement_timestamp()"
            " AT TIME ZONE 'UTC' + interval '5 minutes' WHERE id = ?",
            (job.job_id,))
        transaction.commit()
        log = self.run_skewed(SKEW)
        self.assertThat(log, Contains("No jobs to run."))
        self.assertEqual((JobStatus.WAITING, 0), self.job_state(job))

    def test_runner_behind_reclaims_an_expired_lease(self):
        # An orphan whose lease ran out a second ago, by the database's
        # clock; 10 minutes from now, by the host's.
        job = self.factory.makeDoFooJob(record=True)
        job.job.max_retries = 5
        transaction.commit()
        self.store.execute(
            "UPDATE job SET status = ?, attempt_count = 1, lease_expires ="
            " statement_timestamp() AT TIME ZONE 'UTC' - interval '1 second',"
            " date_started = statement_timestamp() AT TIME ZONE 'UTC'"
            " - interval '1 minute' WHERE id = ?",
            (JobStatus.RUNNING.value, job.job_id))
        transaction.commit()
        log = self.run_skewed(-SKEW)
        self.assertThat(log, Contains("Ran 1 DoFooJob jobs."))
        self.assertEqual((JobStatus.COMPLETED, 2), self.job_state(job))
        self.assertEqual(1, self.executions(job))


class TestSkewedOperator(BlockedRunTestCase):
    """The ``jobs`` command's ages count from the database's clock: an
    operator on a host 10 minutes ahead sees a fresh job as fresh."""

    __test__ = True

    def jobs_skewed(self, seconds, *argv):
        result = subprocess.run(
            [sys.executable, "-m", "tests.reliability.skewed_clock",
             str(seconds), os.path.join(ROOT, "lib", "jobs", "__main__.py"),
             "--format", "json", *argv], cwd=ROOT, capture_output=True,
            text=True, stdin=subprocess.DEVNULL, timeout=120)
        self.assertEqual(0, result.returncode, result.stderr)
        return json.loads(result.stdout)

    def test_ages_follow_the_database_clock(self):
        job = self.factory.makeDoFooJob()
        transaction.commit()
        status = self.jobs_skewed(SKEW, "status")
        self.assertLess(status["oldest_ready_age_seconds"], SKEW / 2)
        # Created within the last 5 minutes, by the database's clock; the
        # skewed host would count back from 10 minutes ahead.
        listed = self.jobs_skewed(SKEW, "list", "--since", "5m")
        self.assertEqual([job.job_id], [row["id"] for row in listed])
        listed = self.jobs_skewed(-SKEW, "list", "--since", "5m")
        self.assertEqual([job.job_id], [row["id"] for row in listed])
