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
max_runtime: 3
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
        # The child stopped the job itself at max_runtime: the parent had
        # nothing to kill.
        self.assertNotIn("killing its process", log)

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


class TestProgressFromChild(DatabaseTestCase):
    """Progress from a job in a child process, read from another
    connection while the job runs (PostgreSQL)."""

    database_kind = "postgresql"
    __test__ = True
    config_extra = SECTIONS

    def test_visible_while_running_and_kept_after_failure(self):
        import json
        import subprocess
        import sys
        import time

        import psycopg2

        from jobs.testing.fixtures import _dsn
        from jobs.testing.script import ROOT
        blocker = psycopg2.connect(_dsn(self.db.uri))
        blocker.autocommit = True
        self.addCleanup(blocker.close)
        cursor = blocker.cursor()
        cursor.execute("SELECT pg_advisory_lock(4545)")
        job = self.factory.makeDoFooJob(
            progress=[[1, 4, "step one"]], sql="SELECT pg_advisory_lock(4545)",
            raise_="error")
        transaction.commit()
        runner = subprocess.Popen(
            [sys.executable, ROOT + "/cronscripts/run_jobs.py",
             "do_foo_isolated"], stderr=subprocess.PIPE, text=True)
        self.addCleanup(runner.kill)
        deadline = time.monotonic() + 60
        progress = None
        while progress is None:
            self.assertLess(time.monotonic(), deadline)
            cursor.execute("SELECT progress FROM job WHERE id = %s",
                           (job.job_id,))
            progress = cursor.fetchone()[0]
            time.sleep(0.05)
        self.assertEqual({"current": 1, "total": 4, "status": "step one"},
                         json.loads(progress))
        cursor.execute("SELECT status FROM job WHERE id = %s", (job.job_id,))
        self.assertEqual(JobStatus.RUNNING.value, cursor.fetchone()[0])
        cursor.execute("SELECT pg_advisory_unlock(4545)")
        _, stderr = runner.communicate(timeout=60)
        self.assertEqual(0, runner.returncode, stderr)
        self.store.invalidate()
        self.assertEqual(JobStatus.FAILED, job.status)
        self.assertEqual(1, json.loads(job.progress)["current"])
