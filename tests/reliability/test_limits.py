"""A concurrency limit holds across runners (issue 16, item 4): four
``run_jobs.py --worker`` processes and a Celery worker serve one section
with ``max_running_per_key: 2`` over 1,000 jobs on 10 keys. Each job
records its running window through a connection that commits at once
(`jobs.testing.windows`); no instant ever sees more than 2 windows of one
key open, no claim leaves more than 2 jobs of a key RUNNING (a trigger
counts them at each claim), and every job completes once. PostgreSQL."""

import os
import signal
import subprocess
import sys

import fixtures
import transaction

from jobs.testing.celery import (
    BrokerFixture,
    CeleryWorkerFixture,
    celery_config,
)
from jobs.testing.executions import assert_each_ran_once
from jobs.testing.script import ROOT
from jobs.testing.testcase import DatabaseTestCase
from jobs.testing.windows import check_claims, max_claimed, max_overlap
from tests.reliability.fleet import scaled, wait_until

RUN_JOBS = os.path.join(ROOT, "cronscripts", "run_jobs.py")
JOBS = scaled(1000, 5000)
KEYS = 10
PER_KEY = 2


class TestConcurrencyLimitAcrossRunners(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def setUp(self):
        self.broker = self.useFixture(BrokerFixture("redis"))
        self.config_extra = celery_config(
            self.broker.url, self.broker.prefix) + (
                "max_running_per_key: %d\npoll_interval: 0.1\n" % PER_KEY)
        super().setUp()
        self.folder = self.useFixture(fixtures.TempDir()).path
        check_claims(self.store)
        transaction.commit()

    def start_worker(self, index):
        log = open(os.path.join(self.folder, "worker-%d.log" % index), "w+")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [sys.executable, RUN_JOBS, "--worker", "do_foo_celery"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(self._kill, process)
        return process, log

    def _kill(self, process):
        if process.poll() is None:
            process.kill()
            process.wait(60)

    def completed(self):
        count = self.store.execute(
            "SELECT count(*) FROM job WHERE status = 2").get_one()[0]
        transaction.abort()
        return count

    def test_never_more_than_the_limit_per_key(self):
        celery = self.useFixture(CeleryWorkerFixture(
            ["%s_jobs" % self.broker.prefix]))
        celery.wait_ready()
        workers = [self.start_worker(index) for index in range(4)]
        # In key order: every runner wants the same key at first.
        job_ids = [self.factory.makeDoFooJob(
            concurrency_key="key-%d" % (index * KEYS // JOBS),
            window="key-%d" % (index * KEYS // JOBS), record=True).job_id
            for index in range(JOBS)]
        transaction.commit()
        wait_until(lambda: self.completed() == JOBS, 600,
                   "every job to complete", details=lambda: "\n".join(
                       open(log.name).read()[-2000:] for _, log in workers)
                   + celery.text()[-2000:])
        overlap = max_overlap(self.store)
        self.assertEqual(KEYS, len(overlap))
        self.assertLessEqual(max(overlap.values()), PER_KEY, overlap)
        # Every claim kept the limit, under the section's lock, and the
        # limit was reached, not just never approached.
        claimed = max_claimed(self.store)
        self.assertEqual(set(overlap), set(claimed))
        self.assertEqual(PER_KEY, max(most for most, _ in claimed.values()),
                         claimed)
        self.assertEqual(0, sum(unlocked for _, unlocked in claimed.values()),
                         claimed)
        pids = assert_each_ran_once(self, self.store, job_ids)
        # The Celery worker and the run_jobs.py workers all took part.
        self.assertGreaterEqual(len(pids), 4, pids)
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, log in workers:
            self.assertEqual(0, process.wait(60), open(log.name).read())
