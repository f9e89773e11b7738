"""`RunnerTestCase`: a reliability test's real runner processes (each
killed at the end of the test, whatever happens) and its reads of the
job rows while they run."""

__all__ = ["RunnerTestCase"]

import os
import signal

import fixtures
import transaction

from jobs.interfaces.job import JobStatus
from jobs.testing.testcase import DatabaseTestCase
from tests.reliability.fleet import Runner, wait_until


class RunnerTestCase(DatabaseTestCase):
    """Real ``run_jobs.py`` processes over section ``reliable_0`` of
    `config_extra`, and reads that never wait for them."""

    def setUp(self):
        super().setUp()
        self.folder = self.useFixture(fixtures.TempDir()).path
        self.runners = []

    def runner(self, *args, worker=False):
        """Start ``run_jobs.py [args] reliable_0``; it is killed at the
        end of the test whatever happens."""
        runner = Runner(0, worker, os.path.join(
            self.folder, "runner-%d.log" % len(self.runners)), args)
        runner.start()
        self.runners.append(runner)
        self.addCleanup(self._kill, runner)
        return runner

    def _kill(self, runner):
        process = runner.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait(60)

    def logs(self):
        return "\n".join("--- runner %d:\n%s" % (index, runner.log_text())
                         for index, runner in enumerate(self.runners))

    def read(self, sql, params):
        """Rows of a read that never waits for a runner: on SQLite through
        a plain connection (WAL lets it read while a running job holds the
        write lock, which the store's BEGIN IMMEDIATE would wait for)."""
        if self.database_kind == "sqlite":
            import sqlite3
            connection = sqlite3.connect(
                self.store.get_database()._filename)
            try:
                return connection.execute(sql, params).fetchall()
            finally:
                connection.close()
        rows = self.store.execute(sql, params).get_all()
        transaction.abort()
        return rows

    def job_row(self, job_id):
        [(status, attempt)] = self.read(
            "SELECT status, attempt_count FROM job WHERE id = ?", (job_id,))
        return JobStatus.items[status], attempt

    def wait_for_row(self, job_id, expected, timeout=60):
        wait_until(lambda: self.job_row(job_id) == expected, timeout,
                   "job %d to be %s" % (job_id, expected), details=self.logs)

    def wait_for_line(self, runner, text, timeout=60):
        wait_until(lambda: text in runner.log_text(), timeout,
                   "the line %r" % text, details=self.logs)

    def executions(self, job_id):
        return sorted(attempt for attempt, in self.read(
            "SELECT attempt FROM job_execution WHERE job = ?", (job_id,)))

    def make_job(self, max_retries=0, **behaviour):
        job = self.factory.makeDoFooJob(record=True, **behaviour)
        job.job.max_retries = max_retries
        job_id = job.job_id
        transaction.commit()
        return job_id
