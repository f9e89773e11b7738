"""A runner's summary is counters, not records (issue 14 item 6): a worker
whose queue never empties keeps its memory bounded."""

import fixtures
import transaction

from jobs.log import BufferLogger
from jobs.runner import JobRunner
from jobs.testing.foojob import DoFooJob
from jobs.testing.testcase import DatabaseTestCase, on_each_database


@on_each_database
class TestRunnerSummaryIsCounters(DatabaseTestCase):

    def test_a_source_run_keeps_counts_not_jobs(self):
        for _ in range(5):
            self.factory.makeDoFooJob()
        transaction.commit()
        runner = JobRunner.runFromSource(DoFooJob, BufferLogger())
        self.assertEqual(({"DoFooJob": 5}, [], []), (
            dict(runner.completed), runner.completed_jobs,
            runner.incomplete_jobs))

    def test_only_the_last_oops_ids_are_kept(self):
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.recording.KEEP_OOPS_IDS", 2))
        for _ in range(5):
            self.factory.makeDoFooJob(raise_="error")
        transaction.commit()
        runner = JobRunner.runFromSource(DoFooJob, BufferLogger())
        reports = [report["id"] for report in self.oopses()]
        self.assertEqual((5, 5, reports[-2:]), (
            len(reports), runner.oops_filed, runner.oops_ids))
        self.assertEqual({"DoFooJob": 5}, dict(runner.incomplete))
