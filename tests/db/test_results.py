"""Job results (issue 16, item 1), on both databases: what ``run()``
returns is stored with the COMPLETED outcome, in every runner mode; what
cannot be stored fails the job with an OOPS that says why; pruning the
job removes it. (The Celery worker's round trip is in
tests/celery/test_celery.py, the worker's in tests/scripts/test_worker.py.)
"""

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.database import get_store
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.testing import tasks
from jobs.testing.testcase import DatabaseTestCase, on_each_database

S = JobStatus
RESULTS = [{"rows": 3, "names": ["a", "é"]}, "done", 42, 2.5, True,
           [1, None], None]
MODES = {
    "in-process": [],
    "group commit": ["--batch-size", "10"],
    "child processes": ["--processes", "1"],
}


@on_each_database
class TestResults(DatabaseTestCase):

    config_extra = tasks.SECTION + """
[do_foo_grouped]
source_interface: jobs.testing.foojob.IDoFooJobSource
group_commit: 10
"""

    def run_section(self, *options, section="do_foo"):
        script = JobCronScript(test_args=[*options, section],
                               commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(0, script.main(), script.logger.getLogBuffer())
        get_store().invalidate()
        return script.logger.getLogBuffer()

    def row(self, job):
        job = get_store().get(Job, job.job_id)
        return job.status, job.result

    def test_every_json_value_round_trips_in_each_mode(self):
        for mode, options in MODES.items():
            section = ("do_foo_grouped" if mode == "group commit"
                       else "do_foo")
            jobs = [self.factory.makeDoFooJob(return_=value)
                    for value in RESULTS]
            transaction.commit()
            self.run_section(*options, section=section)
            self.assertEqual([(S.COMPLETED, value) for value in RESULTS],
                             [self.row(job) for job in jobs], mode)

    def test_a_task_returns_its_result(self):
        job = tasks.add.delay(2, 3)
        transaction.commit()
        self.run_section(section="do_tasks")
        self.assertEqual(5, tasks.add.get(job.job_id).result)
        self.assertEqual(S.COMPLETED, tasks.add.get(job.job_id).status)

    def test_unstorable_results_fail_with_an_oops_and_roll_back(self):
        # The limit is the job class's max_result_bytes (by default its
        # max_json_data_bytes, 1 MiB).
        self.useFixture(fixtures.MonkeyPatch(
            "jobs.testing.foojob.DoFooJob.max_result_bytes", 100))
        unjson = self.factory.makeDoFooJob(return_set=True, note="written")
        big = self.factory.makeDoFooJob(return_="x" * 100, note="written")
        transaction.commit()
        self.run_section()
        self.assertEqual([(S.FAILED, None)] * 2,
                         [self.row(unjson), self.row(big)])
        reports = {report["job_id"]: report for report in self.oopses()}
        self.assertEqual(("InvalidJobResult",
                          "DoFooJob the result of run() is not JSON: Object"
                          " of type set is not JSON serializable."),
                         (reports[unjson.job_id]["type"],
                          reports[unjson.job_id]["value"]))
        self.assertThat(reports[big.job_id]["value"], Contains(
            "DoFooJob the result of run() is 102 bytes of JSON; the limit is"
            " 100. Return a key to data kept in a table of your own"
            " instead."))
        # Its work went with the failure.
        self.assertEqual([None, None], [
            get_store().get(Job, job.job_id) and job.context.foo.note
            for job in (unjson, big)])

    def test_prune_removes_the_result_with_its_job(self):
        from jobs.cli import main
        job_id = self.factory.makeDoFooJob(return_="gone soon").job_id
        transaction.commit()
        self.run_section()
        self.assertEqual(0, main(["prune", "--older-than", "0s"]))
        get_store().invalidate()
        self.assertIsNone(get_store().get(Job, job_id))
