"""Periodic schedules with real worker processes and the real clock:
three workers of one section, a schedule that ticks every second, each
tick enqueued once and run once."""

import os

import fixtures
import transaction

from jobs.interfaces.job import JobStatus
from jobs.testing import scheduled
from jobs.testing.testcase import DatabaseTestCase, on_each_database
from tests.reliability.fleet import Runner, wait_until

EVERY_SECOND = "jobs.testing.scheduled.every_second"


@on_each_database
class TestWorkersEnqueueEachTickOnce(DatabaseTestCase):

    config_extra = (scheduled.section("every_second").rstrip()
                    + "\npoll_interval: 0.2\n\n")

    def start_workers(self, count):
        folder = self.useFixture(fixtures.TempDir()).path
        workers = []
        for slot in range(count):
            runner = Runner(slot, True, os.path.join(
                folder, "worker-%d.log" % slot))
            runner.argv[-1] = "do_scheduled"
            runner.start()
            self.addCleanup(self._kill, runner)
            workers.append(runner)
        return workers

    def _kill(self, runner):
        if runner.process is not None and runner.process.poll() is None:
            runner.process.kill()
            runner.process.wait(60)

    def rows(self, sql):
        rows = self.store.execute(sql).get_all()
        transaction.abort()
        return rows

    def test_three_workers(self):
        workers = self.start_workers(3)

        def logs():
            return "\n".join(worker.log_text() for worker in workers)

        def ticks():
            return self.rows("SELECT count(*) FROM schedule_tick")[0][0]

        wait_until(lambda: ticks() >= 4, 60, "four ticks", details=logs)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.process.wait(60)
            self.assertEqual(0, worker.process.returncode, logs())
        rows = self.rows(
            "SELECT t.tick, t.job, job.status, (SELECT count(*) FROM"
            " job_execution e WHERE e.job = t.job) FROM schedule_tick t"
            " JOIN job ON job.id = t.job ORDER BY t.tick")
        jobs = self.rows("SELECT count(*) FROM job")[0][0]
        # Each tick is one job, run once, and every job is a tick's.
        self.assertEqual(len(rows), jobs, logs())
        self.assertEqual(len(rows), len({job for _, job, _, _ in rows}))
        finished = [(status, runs) for _, _, status, runs in rows
                    if status != JobStatus.WAITING.value]
        self.assertGreaterEqual(len(finished), 3, logs())
        self.assertEqual({(JobStatus.COMPLETED.value, 1)}, set(finished),
                         logs())
        # Each tick was enqueued by one worker (logged once).
        enqueued_by = [worker.log_text().count("Schedule %s: tick"
                                               % EVERY_SECOND)
                       for worker in workers]
        self.assertEqual(len(rows), sum(enqueued_by), logs())
