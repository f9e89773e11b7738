"""Celery worker processes in the worker table (`jobs.presence`): each
pool process registers and beats, holds the job it runs, and ``jobs
cancel --worker`` stops the Celery worker with a warm shutdown (its
running job finishes; the rows go)."""

import io

import fixtures
import transaction

from jobs.cli import main
from jobs.cli.workers import worker_rows
from jobs.interfaces.job import JobStatus
from jobs.testing.celery import wait_until
from tests.celery.test_celery import CeleryTestCase


class TestCeleryWorkerProcesses(CeleryTestCase):

    __test__ = True
    extra_sections = "[workers]\nbeat_seconds: 0.3\nlost_after_beats: 3\n\n"

    def workers(self):
        try:
            return worker_rows(self.config, self.store)
        finally:
            transaction.abort()

    def test_registered_holding_and_stopped(self):
        worker = self.start_worker(concurrency=2)
        wait_until(lambda: len(self.workers()) == 2, 30)
        rows = self.workers()
        self.assertEqual([("celery", "live")] * 2,
                         [(row["kind"], row["state"]) for row in rows])
        self.assertIn("do_foo_celery", rows[0]["sections"].split())
        self.assertNotIn(worker.process.pid, [row["pid"] for row in rows])
        job_id = self.make_job(sleep=3)
        self.wait_for_status(job_id, JobStatus.RUNNING)
        holding = lambda: [row for row in self.workers()  # noqa: E731
                           if row["jobs"]]
        self.assertTrue(wait_until(lambda: holding(), 30), self.workers())
        [row] = holding()
        self.assertEqual([{"job": job_id, "attempt": 1, "now": "running"}],
                         row["jobs"])
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        self.assertEqual(0, main(["cancel", "--worker", str(row["id"])]))
        worker.process.wait(60)
        self.assertEqual(0, worker.process.returncode, worker.text())
        self.assertEqual(JobStatus.COMPLETED, self.status_of(job_id))
        self.assertEqual([], self.workers())
