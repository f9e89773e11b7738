"""README's first command, piece by piece, in real subprocesses on SQLite."""

import os
import re
import subprocess
import sys

import fixtures
from testtools.matchers import Contains

from jobs.testing.fixtures import ConfigFixture
from jobs.testing.script import ROOT, run_script
from jobs.testing.testcase import TestCase


class TestDemo(TestCase):

    def demo(self, command):
        process = subprocess.run(
            [sys.executable, "-m", "jobs.demo.cli", command],
            capture_output=True, text=True, cwd=ROOT, timeout=120)
        self.assertEqual(0, process.returncode, process.stderr)
        return process.stdout

    def test_demo_shows_three_outcomes_and_an_oops_read_back(self):
        config = self.useFixture(ConfigFixture(base="development")).config
        folder = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(
            "JOBS_DATABASE_URI", "sqlite:%s/demo.db" % folder))
        created = self.demo("create")
        self.assertThat(created, Contains("Created demo job 3 (fail)."))
        code, out, err = run_script("cronscripts/run_jobs.py", ["demo"])
        self.assertEqual(0, code, err)
        self.assertThat(err, Contains("Running DemoJob (ID 1), attempt 1"))
        self.assertThat(err, Contains("Ran 1 DemoJob jobs."))
        self.assertThat(err, Contains(
            "Scheduling retry due to TransientError: the service is busy, "
            "try later."))
        oops_id = re.search(r"Job resulted in OOPS: (OOPS-\w+)", err).group(1)
        report = self.demo("report")
        self.assertThat(report, Contains("Job 1 complete Completed"))
        self.assertThat(report, Contains("Job 2 retry    Waiting"))
        self.assertThat(report, Contains("Job 3 fail     Failed"))
        self.assertThat(report, Contains(
            "OOPS %s (read back from %s" % (
                oops_id, os.path.join(config.error_dir, ""))))
        self.assertThat(report, Contains(
            "RuntimeError: the demo job failed on purpose; job 3"))
