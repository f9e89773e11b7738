"""Runners killed at random moments lose no job and run none twice.

Kills: ``JOBS_RELIABILITY_SCALE=full`` makes 100, CI 25. The seed is
random unless ``JOBS_CRASH_SEED`` gives one; it is printed, and named in
the failure message, so that a failing run can be replayed.
"""

import os
import random

from jobs.testing.testcase import DatabaseTestCase
from tests.reliability.crash import MODES, SECTIONS, CrashDriver
from tests.reliability.fleet import Fleet, scaled


class TestCrashes(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True
    config_extra = SECTIONS

    def test_killed_runners_lose_no_job_and_double_none(self):
        seed = int(os.environ.get("JOBS_CRASH_SEED")
                   or random.SystemRandom().randrange(10 ** 6))
        lines = []
        driver = CrashDriver(scaled(25, 100), seed,
                             error_dir=self.config.error_dir,
                             out=lines.append)
        report = driver.run(self.useFixture(Fleet(MODES)))
        print("\n".join(lines))
        self.assertEqual([], report.problems, report.text())
        summary = report.summary
        self.assertEqual(0, summary["statuses"].get("Running", 0))
        self.assertEqual(0, summary["statuses"].get("Waiting", 0))
        self.assertGreater(summary["jobs"], 0)
