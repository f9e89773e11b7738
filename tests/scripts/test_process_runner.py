"""ProcessJobRunner: jobs in child processes with hard limits, in-process
script runs (the children are real processes) on both databases."""

import transaction
from testtools.matchers import Contains

from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.runner import JobCronScript
from jobs.testing.foojob import Foo
from jobs.testing.testcase import DatabaseTestCase, on_each_database

SECTIONS = """
[do_foo_isolated]
source_interface: jobs.testing.foojob.IDoFooJobSource
runner_class: ProcessJobRunner
processes: 2
lease_seconds: 3
memory_limit: 1500000000
"""


@on_each_database
class TestProcessJobRunner(DatabaseTestCase):

    config_extra = SECTIONS

    def run_section(self, *extra):
        script = JobCronScript(test_args=[*extra, "do_foo_isolated"],
                               commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(0, script.lock_and_run(),
                         script.logger.getLogBuffer())
        self.store.invalidate()
        return script.logger.getLogBuffer()

    def make(self, **behaviour):
        job = self.factory.makeDoFooJob(
            foo=self.factory.makeFoo(), note="done", **behaviour)
        transaction.commit()
        return job

    def note(self, job):
        return self.store.get(Foo, job.context.foo_id).note

    def test_jobs_complete_in_children(self):
        jobs = [self.make(record=True) for _ in range(4)]
        log = self.run_section()
        self.assertEqual([JobStatus.COMPLETED] * 4, [j.status for j in jobs])
        self.assertEqual(["done"] * 4, [self.note(j) for j in jobs])
        import os
        pids = {row[0] for row in self.store.execute(
            "SELECT pid FROM job_execution")}
        self.assertNotIn(os.getpid(), pids)
        self.assertThat(log, Contains("Running through 2 child processes."))
        self.assertThat(log, Contains("Ran 4 DoFooJob jobs."))

    def test_timeout_fails_with_oops_and_others_complete(self):
        slow = self.make(sleep=600)
        quick = [self.make() for _ in range(3)]
        # One child: on SQLite a job holds the write lock while it runs,
        # so a second child would wait on it (and time out) too.
        log = self.run_section("--processes", "1")
        self.assertEqual(JobStatus.FAILED, slow.status)
        self.assertEqual(None, self.note(slow))
        self.assertEqual([JobStatus.COMPLETED] * 3, [j.status for j in quick])
        [oops] = self.oopses()
        self.assertEqual(("TimeoutError", "Job ran too long."),
                         (oops["type"], oops["value"]))
        self.assertEqual(str(slow.context.foo_id), oops["req_vars"]["foo_id"])
        self.assertThat(log, Contains("ran past its lease: killing"))

    def test_memory_limit_fails_with_memory_error(self):
        hog = self.make(allocate=4 * 1024 ** 3)
        other = self.make()
        self.run_section()
        self.assertEqual(JobStatus.FAILED, hog.status)
        self.assertEqual(JobStatus.COMPLETED, other.status)
        [oops] = self.oopses()
        self.assertEqual("MemoryError", oops["type"])

    def test_dying_child_fails_its_job_and_is_replaced(self):
        dying = [self.make(exit=3), self.make(exit=4)]
        others = [self.make() for _ in range(4)]
        self.run_section("--processes", "1")
        self.assertEqual([JobStatus.FAILED] * 2, [j.status for j in dying])
        self.assertEqual([JobStatus.COMPLETED] * 4,
                         [j.status for j in others])
        values = sorted(oops["value"] for oops in self.oopses())
        self.assertEqual(
            ["The child process running the job exited with status 3.",
             "The child process running the job exited with status 4."],
            values)
        self.assertEqual({"ChildDied"},
                         {oops["type"] for oops in self.oopses()})

    def test_outcomes_in_children_follow_the_table(self):
        failing = self.make(raise_="error")
        retrying = self.make(raise_="retry")
        retrying.job.max_retries = 1
        transaction.commit()
        self.run_section()
        self.assertEqual(JobStatus.FAILED, failing.status)
        self.assertEqual(JobStatus.WAITING, retrying.status)
        self.assertEqual("done", self.note(retrying))
        [oops] = self.oopses()
        self.assertEqual(("ValueError", "T-do_foo_isolated"),
                         (oops["type"], oops["reporter"]))
