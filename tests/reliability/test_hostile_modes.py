"""Hostile job code in the runner modes `test_hostile_processes.py` does
not try it in (issue 14, item 1): each misbehaviour in a worker's batch
in-process and in a ``--processes`` child, threads left behind by a
child, progress after locking the job's own row in a worker, a deadlock
between children, a real SIGINT during a job, and the settings of the
connections that run job code.
"""

import json
import os
import signal
import time

import transaction

from jobs.testing.testcase import on_each_database
from tests.reliability.fleet import sections, wait_until
from tests.reliability.test_hostile_processes import (
    GRACE, SETTINGS, HostileTestCase, S, TestMisbehavingJobsInAWorkersBatch,
    thaw)


@on_each_database
class TestOtherMisbehavioursInAWorkersBatch(
        TestMisbehavingJobsInAWorkersBatch):
    """The exceptions that are not Exceptions, and the other ways to end
    the runner's transaction (a commit then a raise, an abort, ROLLBACK
    as SQL), in a worker's claimed batch, in-process and in a child."""

    BAD = (({"misbehave": "KeyboardInterrupt"}, "KeyboardInterrupt"),
           ({"misbehave": "GeneratorExit"}, "GeneratorExit"),
           ({"misbehave": "BaseException"}, "BaseException"),
           ({"misbehave": "store.commit", "raise_": "error"},
            "TransactionMisuse"),
           ({"misbehave": "transaction.abort"}, "TransactionMisuse"),
           ({"misbehave": "ROLLBACK"}, "TransactionMisuse"))


@on_each_database
class TestLeftBehindThreadsInAChild(HostileTestCase):
    """A job that leaves a non-daemon thread in its ``--processes`` child
    keeps neither the child nor its parent alive past the grace period."""

    LINE = "Job code left 1 thread(s) running (left-behind)"

    def test_a_cron_run_exits(self):
        job_id = self.make_job(misbehave="thread")
        [innocent] = self.innocents(1)
        run = self.runner("--processes", "1")
        started = time.monotonic()
        self.assertEqual(0, run.process.wait(GRACE + 60), self.logs())
        self.assertLess(time.monotonic() - started, GRACE + 15, self.logs())
        self.assertRanOnce([job_id, innocent])
        self.assertIn(self.LINE, run.log_text())

    def test_a_worker_stops_on_sigterm(self):
        job_id = self.make_job(misbehave="thread")
        worker = self.runner("--processes", "1", worker=True)
        self.wait_for_row(job_id, (S.COMPLETED, 1))
        asked = time.monotonic()
        self.assertEqual(0, self.stop(worker, GRACE + 60), self.logs())
        self.assertLess(time.monotonic() - asked, GRACE + 15, self.logs())
        self.assertIn(self.LINE, worker.log_text())


@on_each_database
class TestOwnRowProgressInAWorker(HostileTestCase):
    """Progress reported after the job updated its own row is written and
    never waits on the job's own row lock, in a worker and in a child."""

    def check(self, *args):
        job_id = self.make_job(misbehave="own_row_progress")
        [innocent] = self.innocents(1)
        worker = self.runner(*args, worker=True)
        self.wait_for_row(job_id, (S.COMPLETED, 1), timeout=30)
        self.wait_for_row(innocent, (S.COMPLETED, 1), timeout=30)
        [(progress,)] = self.read("SELECT progress FROM job WHERE id = ?",
                                  (job_id,))
        self.assertIn("after locking my own row", progress)
        self.assertRanOnce([job_id, innocent])
        self.assertEqual(0, self.stop(worker), self.logs())

    def test_in_process(self):
        self.check()

    def test_in_a_child(self):
        self.check("--processes", "1")


@on_each_database
class TestRealSigintDuringAJob(HostileTestCase):
    """A KeyboardInterrupt raised by job code is the job's; a real SIGINT
    to the runner is not: the running job completes and the worker exits
    0 (SIGINT is a graceful stop, like SIGTERM)."""

    def test_the_running_job_completes(self):
        job_id = self.make_job(sleep=1)
        worker = self.runner(worker=True)
        self.wait_for_line(worker, "Running DoFooJob (ID %d)" % job_id)
        worker.process.send_signal(signal.SIGINT)
        self.assertEqual(0, worker.process.wait(GRACE + 60), self.logs())
        self.assertRanOnce([job_id])
        self.assertEqual([], self.oopses())


class TestChildDeadlock(HostileTestCase):
    """Two ``--processes`` workers' children deadlock: the victim's attempt
    is a transient failure, run again within max_retries, no OOPS."""

    database_kind = "postgresql"
    __test__ = True

    def test_a_deadlock_victim_in_a_child_runs_again(self):
        a, b = self.factory.makeFoo(), self.factory.makeFoo()
        transaction.commit()
        workers = [self.runner("--processes", "1", worker=True)
                   for _ in range(2)]
        for worker in workers:
            self.wait_for_line(worker, "Listening for new jobs")
        one = self.make_job(lock_foos=[a.id, b.id], pause=1, max_retries=3)
        two = self.make_job(lock_foos=[b.id, a.id], pause=1, max_retries=3)
        wait_until(lambda: {self.job_row(one)[0], self.job_row(two)[0]}
                   == {S.COMPLETED}, 60, "both jobs to complete",
                   details=self.logs)
        self.assertEqual([1, 2], sorted(
            [self.job_row(one)[1], self.job_row(two)[1]]), self.logs())
        self.assertEqual([[1], [2]], sorted(
            [self.executions(one), self.executions(two)]))
        self.assertEqual([], self.oopses())
        self.assertIn("DeadlockDetected", self.logs())


class TestRunnerSessionSettings(HostileTestCase):
    """The connection that runs job code has a statement_timeout (the
    section's), a lock_timeout, an idle_in_transaction_session_timeout
    (``[database]``) and TCP keepalives, in every runner mode: so that a
    hung backend never holds a shutdown past its grace period."""

    database_kind = "postgresql"
    __test__ = True
    config_extra = sections([dict(SETTINGS, statement_timeout=45)])

    EXPECTED = {"statement_timeout": "45s", "lock_timeout": "1min",
                "idle_in_transaction_session_timeout": "1h",
                "keepalive": 1, "keepalive_idle": 30}

    def session_of_a_job(self, *args, worker=False):
        job_id = self.make_job(misbehave="report_session")
        run = self.runner(*args, worker=worker)
        self.wait_for_row(job_id, (S.COMPLETED, 1))
        if worker:
            self.assertEqual(0, self.stop(run), self.logs())
        else:
            self.assertEqual(0, run.process.wait(60), self.logs())
        [(note,)] = self.read(
            "SELECT foo.note FROM foo JOIN foo_job ON foo_job.foo = foo.id"
            " WHERE foo_job.job = ?", (job_id,))
        return json.loads(note)

    def test_a_cron_run(self):
        self.assertEqual(self.EXPECTED, self.session_of_a_job())

    def test_a_worker(self):
        self.assertEqual(self.EXPECTED, self.session_of_a_job(worker=True))

    def test_a_child_process(self):
        self.assertEqual(self.EXPECTED,
                         self.session_of_a_job("--processes", "1"))


class TestRunnerSessionDefaults(HostileTestCase):
    """A section that sets no statement_timeout: its runner's connection
    has none (``0``); the other settings as ever."""

    database_kind = "postgresql"
    __test__ = True
    config_extra = sections([SETTINGS])

    session_of_a_job = TestRunnerSessionSettings.session_of_a_job

    def test_no_statement_timeout_by_default(self):
        self.assertEqual(
            dict(TestRunnerSessionSettings.EXPECTED, statement_timeout="0"),
            self.session_of_a_job(worker=True))


def children_of(pid):
    """The pids of `pid`'s child processes (Linux)."""
    found = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as file:
            found.extend(int(child) for child in file.read().split())
    return found


class TestFrozenProcessRunner(HostileTestCase):
    """A ``--processes`` runner frozen whole (parent and child, as a
    frozen host would be) while its child's job holds a row lock: the
    runner that takes the job over is not blocked by that lock."""

    database_kind = "postgresql"
    __test__ = True

    def test_the_taker_ends_the_frozen_childs_session(self):
        self.check(worker=True)

    def test_a_process_runner_taker_ends_it_too(self):
        self.check("--processes", "1", worker=True)

    def check(self, *taker_args, worker):
        foo = self.factory.makeFoo()
        transaction.commit()
        job_id = self.make_job(
            sql="UPDATE foo SET note = 'mine' WHERE id = %d" % foo.id,
            sleep=2, max_retries=1)
        frozen = self.runner("--processes", "1", worker=True)
        self.wait_for_row(job_id, (S.RUNNING, 1))
        self.wait_for_line(frozen, "Running DoFooJob (ID %d)" % job_id)
        pids = [frozen.process.pid] + children_of(frozen.process.pid)
        self.assertGreaterEqual(len(pids), 2)  # (and a resource tracker)
        for pid in pids:
            self.freeze(pid)
        taker = self.runner(*taker_args, worker=worker)
        # Attempt 2 needs the row lock the frozen child's session holds:
        # it gets it at once, not after lock_timeout (60 s).
        started = time.monotonic()
        self.wait_for_row(job_id, (S.COMPLETED, 2), timeout=90)
        self.assertLess(time.monotonic() - started, 30, self.logs())
        self.assertIn("Ended the database session of the lost runner",
                      taker.log_text())
        for pid in pids:
            thaw(pid)
        self.assertEqual([2], self.executions(job_id))
        self.assertEqual(0, self.stop(frozen), self.logs())


class TestFrozenSessionOfAChild(HostileTestCase):
    """A ``--processes`` worker whose child hangs on a frozen database
    session (the backend SIGSTOPped, as a network hang) still stops
    within its grace period on SIGTERM, and the job is not lost."""

    database_kind = "postgresql"
    __test__ = True

    def test_the_worker_stops_within_its_grace_period(self):
        job_id = self.make_job(sleep=2, misbehave="query", max_retries=1)
        worker = self.runner("--processes", "1", worker=True)
        self.wait_for_line(worker, "Running DoFooJob (ID %d)" % job_id)
        # The child's session (its claim names it once the job starts).
        backend = self.backend_of(job_id)
        self.freeze(backend)
        asked = time.monotonic()
        self.assertIn(self.stop(worker, GRACE + 60), (0, 1), self.logs())
        self.assertLess(time.monotonic() - asked, GRACE + 5, self.logs())
        thaw(backend)
        self.runner(worker=True)
        self.wait_for_row(job_id, (S.COMPLETED, 2))
        self.assertEqual([2], self.executions(job_id))
