"""The seed's own pattern runs in every mode: a job family written as
Launchpad's guide writes it (`jobs.testing.seedjob`: `BaseRunnableJob`
with the `EnumeratedSubclass` metaclass, its own ``__init__(context)``,
``iterReady`` and ``get``, no `DerivedJob`), run by ``run_jobs.py``, by
``--worker``, by ``--processes`` and by ``JobCronScript`` in-process."""

import contextlib
import os
import signal
import subprocess
import sys

import transaction
from testtools.matchers import Contains

from zope.component import provideUtility
from zope.interface import Interface, provider

from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.runner import JobCronScript
from jobs.testing.script import ROOT, run_script
from jobs.testing.seedjob import PingJob
from jobs.testing.testcase import DatabaseTestCase, on_each_database
from tests.reliability.fleet import wait_until

RUN_JOBS = os.path.join(ROOT, "cronscripts", "run_jobs.py")


class SeedTestCase(DatabaseTestCase):

    config_extra = """
[ping]
# The seed-style job family (jobs.testing.seedjob).
source_interface: jobs.testing.seedjob.IPingJobSource
"""

    def make_jobs(self, *messages):
        job_ids = [PingJob.create(message).job_id for message in messages]
        transaction.commit()
        return job_ids

    def statuses(self, job_ids):
        self.store.invalidate()
        rows = dict(self.store.execute(
            "SELECT id, status FROM job WHERE id IN (%s)"
            % ", ".join(map(str, job_ids))))
        transaction.abort()
        return [JobStatus.items[rows[job_id]] for job_id in job_ids]

    def executions(self):
        rows = sorted(self.store.execute(
            "SELECT job, attempt FROM job_execution"))
        transaction.abort()
        return rows


@on_each_database
class TestSeedPattern(SeedTestCase):

    def test_job_cron_script_in_process(self):
        job_ids = self.make_jobs("a", "b", "fail")
        script = JobCronScript(test_args=["ping"], commandline_config=True)
        script.logger = BufferLogger()
        self.assertEqual(0, script.main(), script.logger.getLogBuffer())
        self.assertEqual(
            [JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.FAILED],
            self.statuses(job_ids))
        self.assertEqual([(job_ids[0], 1), (job_ids[1], 1)],
                         self.executions())
        [oops] = self.oopses()
        self.assertEqual(("ValueError", str(job_ids[2])),
                         (oops["type"], oops["req_vars"]["job_id"]))
        self.assertThat(script.logger.getLogBuffer(),
                        Contains("Ran 2 PingJob jobs."))

    def test_run_jobs_py(self):
        job_ids = self.make_jobs("a", "b")
        code, _, err = run_script("cronscripts/run_jobs.py", ["ping"])
        self.assertEqual(0, code, err)
        self.assertEqual([JobStatus.COMPLETED] * 2, self.statuses(job_ids))
        self.assertThat(err, Contains("Ran 2 PingJob jobs."))
        self.assertNotIn("Traceback", err)

    def test_run_jobs_py_in_child_processes(self):
        job_ids = self.make_jobs("a", "b")
        code, _, err = run_script("cronscripts/run_jobs.py",
                                  ["--processes", "1", "ping"])
        self.assertEqual(0, code, err)
        self.assertEqual([JobStatus.COMPLETED] * 2, self.statuses(job_ids))
        pids = {row[0] for row in self.store.execute(
            "SELECT pid FROM job_execution")}
        transaction.abort()
        self.assertNotIn(os.getpid(), pids)

    def test_worker(self):
        job_ids = self.make_jobs("a", "b")
        log = open(os.path.join(self.config_fixture.lock_dir + "-worker"),
                   "w+")
        self.addCleanup(log.close)
        worker = subprocess.Popen(
            [sys.executable, RUN_JOBS, "--worker", "ping"],
            stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(lambda: worker.poll() is None and worker.kill())
        wait_until(lambda: self.statuses(job_ids) == [JobStatus.COMPLETED] * 2,
                   60, "the worker to run the jobs",
                   details=lambda: open(log.name).read())
        worker.send_signal(signal.SIGTERM)
        self.assertEqual(0, worker.wait(60), open(log.name).read())
        self.assertEqual([(job_id, 1) for job_id in job_ids],
                         self.executions())


class IBareSource(Interface):
    """The seed's IJobSource and nothing more: iterReady, contextManager,
    memory_limit."""


@provider(IBareSource)
class BareSource:
    """A source that is not a class of ours: it only iterates."""

    memory_limit = None

    @staticmethod
    def iterReady():
        return PingJob.iterReady()

    @staticmethod
    def contextManager():
        return contextlib.nullcontext()


class RunBare(JobCronScript):
    """A custom cron script for that source (the seed's way)."""

    config_name = "bare"
    source_interface = IBareSource


@on_each_database
class TestOnlyIterReady(SeedTestCase):
    """A source with only ``iterReady`` runs in this process; a mode that
    needs to load a job by id refuses it with one line."""

    def setUp(self):
        super().setUp()
        provideUtility(BareSource, IBareSource)

    def run_bare(self, *args):
        script = RunBare(test_args=list(args))
        script.logger = BufferLogger()
        return script.main(), script.logger.getLogBuffer()

    def test_runs_in_process(self):
        job_ids = self.make_jobs("a", "b")
        code, log = self.run_bare()
        self.assertEqual(0, code, log)
        self.assertEqual([JobStatus.COMPLETED] * 2, self.statuses(job_ids))
        self.assertEqual([(job_id, 1) for job_id in job_ids],
                         self.executions())

    def test_child_processes_refuse_it_with_one_line(self):
        job_ids = self.make_jobs("a")
        code, log = self.run_bare("--processes", "1")
        self.assertEqual(2, code)
        self.assertThat(log, Contains(
            "ERROR   Section bare: its source %r cannot load a job by its id"
            " (it has no getJobs or get, only iterReady): it cannot run in"
            " child processes.\n" % BareSource))
        self.assertNotIn("Traceback", log)
        self.assertEqual([JobStatus.WAITING], self.statuses(job_ids))
