"""Live workers with real runner processes: a worker killed with kill -9
is listed as lost once its beats stop, with the job it held, which
another worker takes over; ``jobs cancel --worker`` stops a worker as
SIGTERM does; a process runner's parent holds its children's jobs.

Beats every 0.3 s, lost after 3 of them; leases of 1 s.
"""

import io
import json
import subprocess
import sys

import fixtures
import transaction

from jobs.cli.workers import worker_rows
from jobs.interfaces.job import JobStatus
from tests.reliability.fleet import wait_until
from tests.reliability.test_heartbeat import SECTION, HeartbeatTestCase
from jobs.testing.testcase import on_each_database

WORKERS = "[workers]\nbeat_seconds: 0.3\nlost_after_beats: 3\n\n"


class WorkersTestCase(HeartbeatTestCase):

    config_extra = SECTION + WORKERS

    def workers(self):
        """``jobs workers``' rows, read in this process. (On SQLite, not
        while a job runs: its transaction holds the lock reads wait for.)"""
        try:
            return worker_rows(self.config, self.store)
        finally:
            transaction.abort()

    def row_of(self, runner):
        rows = [row for row in self.workers()
                if row["pid"] == runner.process.pid]
        return rows[0] if rows else None

    def jobs_command(self, *argv):
        process = subprocess.run(
            [sys.executable, "-m", "jobs", *argv], capture_output=True,
            text=True, timeout=60, stdin=subprocess.DEVNULL)
        return process.returncode, process.stdout, process.stderr

    def held_by(self, pid):
        """PostgreSQL: ``[(job, attempt)]`` the row of `pid` holds, read
        without waiting for anyone."""
        rows = self.read("SELECT jobs FROM worker WHERE pid = ?", (pid,))
        return [tuple(pair) for pair in json.loads(rows[0][0])] if rows \
            else None


@on_each_database
class TestKilledWorker(WorkersTestCase):

    def test_a_killed_worker_is_lost_and_its_job_taken_over(self):
        job_id = self.make_job(sleep=3, max_retries=1)
        first = self.runner(worker=True)
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        pid = first.process.pid
        if self.database_kind == "postgresql":
            # Its row says it holds the job (its lease heartbeat's).
            wait_until(lambda: self.held_by(pid) == [(job_id, 1)], 60,
                       "the worker's row to hold the job", details=self.logs)
            self.assertEqual("live", self.row_of(first)["state"])
        first.process.kill()
        first.process.wait(60)
        wait_until(lambda: self.row_of(first)["state"] == "lost", 60,
                   "the killed worker to be listed as lost",
                   details=self.logs)
        # Another worker takes its job over when the lease has expired.
        second = self.runner(worker=True)
        self.wait_for_row(job_id, (JobStatus.COMPLETED, 2))
        second.stop()
        self.assertEqual([], second.unexpected_exits(), self.logs())
        # The stopped worker's row is gone; the lost one's stays, with
        # what it held.
        [row] = self.workers()
        self.assertEqual((pid, "lost", "worker", "reliable_0"), (
            row["pid"], row["state"], row["kind"], row["sections"]))
        if self.database_kind == "postgresql":
            self.assertEqual(
                [{"job": job_id, "attempt": 1,
                  "now": "taken over by attempt 2 (completed)"}],
                row["jobs"])
        code, out, err = self.jobs_command("workers", "--lost")
        self.assertEqual(0, code, err)
        self.assertIn(" lost ", out)


@on_each_database
class TestStopRequest(WorkersTestCase):

    def test_cancel_worker_stops_an_idle_worker_gracefully(self):
        worker = self.runner(worker=True)
        wait_until(lambda: self.row_of(worker) is not None, 60,
                   "the worker's row", details=self.logs)
        row = self.row_of(worker)
        self.assertEqual(("live", "worker"), (row["state"], row["kind"]))
        code, out, err = self.jobs_command("cancel", "--worker",
                                           str(row["id"]))
        self.assertEqual((0, "Worker %d: stop requested; it stops at its"
                          " next beat.\n" % row["id"]), (code, out), err)
        worker.process.wait(60)
        self.assertEqual(0, worker.process.returncode, self.logs())
        log = worker.log_text()
        self.assertIn("Worker %d: stop requested (jobs cancel --worker):"
                      " stopping as after SIGTERM." % row["id"], log)
        self.assertIn("Worker stopped.", log)
        self.assertEqual([], self.workers())


class TestStopRequestWhileRunning(WorkersTestCase):
    """PostgreSQL: on SQLite the request's UPDATE waits for the write
    lock, which a busy worker's jobs hold back to back."""

    database_kind = "postgresql"
    __test__ = True

    def test_the_running_job_finishes_the_others_wait(self):
        running = self.make_job(sleep=2)
        waiting = self.make_job()
        worker = self.runner(worker=True)
        self.wait_for_row(running, (JobStatus.RUNNING, 1))
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch("sys.stdout", out))
        from jobs.cli import main
        row = self.row_of(worker)
        self.assertEqual(0, main(["cancel", "--worker", str(row["id"])]))
        worker.process.wait(60)
        self.assertEqual(0, worker.process.returncode, self.logs())
        self.assertEqual((JobStatus.COMPLETED, 1), self.job_row(running))
        self.assertEqual((JobStatus.WAITING, 0), self.job_row(waiting))


class TestProcessRunnerParent(WorkersTestCase):
    """PostgreSQL (where the parent's lease heartbeat runs): a cron run
    through child processes is listed, holding its child's job."""

    database_kind = "postgresql"
    __test__ = True

    def test_the_parent_holds_its_childs_job(self):
        job_id = self.make_job(sleep=2)
        run = self.runner("--processes", "1")
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        wait_until(lambda: self.held_by(run.process.pid) == [(job_id, 1)],
                   60, "the parent's row to hold the job", details=self.logs)
        self.assertEqual("cron", self.row_of(run)["kind"])
        run.process.wait(60)
        self.assertEqual(0, run.process.returncode, self.logs())
        self.assertEqual((JobStatus.COMPLETED, 1), self.job_row(job_id))
        self.assertEqual([], self.workers())
