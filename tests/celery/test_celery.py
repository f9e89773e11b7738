"""Jobs through Celery: real brokers (RabbitMQ and Redis on this machine),
real PostgreSQL, ``jobs celery-worker`` in subprocesses."""

import logging
import os
import subprocess
import sys
import time
from datetime import timedelta

import fixtures
import transaction
from testtools.matchers import Contains

from jobs.celery.dispatch import send_jobs
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job
from jobs.runner import JobCronScript
from jobs.testing.celery import (
    BrokerFixture,
    CeleryWorkerFixture,
    PrivateRedisFixture,
    celery_config,
    wait_until,
)
from jobs.testing.executions import assert_each_ran_once
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing import tasks
from jobs.testing.script import ROOT
from jobs.testing.testcase import DatabaseTestCase

RUN_JOBS = os.path.join(ROOT, "cronscripts", "run_jobs.py")


class CeleryTestCase(DatabaseTestCase):
    """A PostgreSQL test with a broker, its own queues and a Celery-enabled
    section ``do_foo_celery``."""

    database_kind = "postgresql"
    broker_kind = "redis"
    time_limits = None
    sweep_grace = 0

    # More configuration text (sections) after celery_config's.
    extra_sections = ""

    def setUp(self):
        self.broker = self.useFixture(self.make_broker())
        self.config_extra = celery_config(
            self.broker.url, self.broker.prefix, self.time_limits,
            self.sweep_grace) + self.extra_sections
        super().setUp()
        self.queue = "%s_jobs" % self.broker.prefix
        self.slow_queue = "%s_slow" % self.broker.prefix

    def make_broker(self):
        return BrokerFixture(self.broker_kind)

    def start_worker(self, queues=None, **kwargs):
        worker = self.useFixture(CeleryWorkerFixture(
            queues or [self.queue], **kwargs))
        self.addDetail_worker(worker)
        worker.wait_ready()
        return worker

    def addDetail_worker(self, worker):
        from testtools.content import Content, UTF8_TEXT
        self.addDetail("worker-log-%s" % worker.name, Content(
            UTF8_TEXT, lambda: [worker.text().encode("utf-8")]))

    def status_of(self, job_id):
        transaction.abort()
        row = self.store.execute(
            "SELECT status FROM job WHERE id = ?", (job_id,)).get_one()
        transaction.abort()
        return JobStatus.items[row[0]]

    def wait_for_status(self, job_id, status, timeout=60):
        if not wait_until(lambda: self.status_of(job_id) is status,
                          timeout):
            self.fail("Job %d is %s, not %s, after %d s." % (
                job_id, self.status_of(job_id).title, status.title,
                timeout))

    def executions(self, job_id):
        """The attempts whose run of `job_id` committed (``record``)."""
        transaction.abort()
        rows = self.store.execute(
            "SELECT attempt, pid FROM job_execution WHERE job = ?"
            " ORDER BY attempt", (job_id,)).get_all()
        transaction.abort()
        return rows

    def assertQueued(self, expected, queue=None):
        """`expected` messages wait in `queue` (polled with a deadline)."""
        queue = queue or self.queue
        wait_until(lambda: self.broker.queue_length(queue) >= expected, 10)
        self.assertEqual(expected, self.broker.queue_length(queue))

    def make_job(self, **behaviour):
        """A DoFooJob, committed: sent to Celery by do_foo_celery."""
        job = self.factory.makeDoFooJob(**behaviour)
        job_id = job.job_id
        transaction.commit()
        return job_id


class DispatchTests:
    """Sending after commit, without a worker: the queue is looked at.

    A message the broker has not routed yet would read as absent, so
    "nothing was sent" is always shown next to a later message that was:
    a client's messages arrive in order.
    """

    def test_commit_sends_the_new_job_to_its_queue(self):
        self.factory.makeDoFooJob()
        # Nothing before the commit: the job does not exist for others.
        self.assertEqual(0, self.broker.queue_length(self.queue))
        transaction.commit()
        self.assertQueued(1)

    def test_aborted_transaction_sends_nothing(self):
        self.factory.makeDoFooJob()
        self.factory.makeDoFooJob()
        transaction.abort()
        self.factory.makeDoFooJob()
        transaction.commit()
        self.assertQueued(1)

    def test_failed_commit_sends_nothing(self):
        self.factory.makeDoFooJob()
        # A deferred check fails at COMMIT, after the job was created.
        self.store.execute(
            "CREATE TEMPORARY TABLE t (id int UNIQUE"
            " DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP")
        self.store.execute("INSERT INTO t VALUES (1), (1)")
        self.assertRaises(Exception, transaction.commit)
        transaction.abort()
        self.factory.makeDoFooJob()
        transaction.commit()
        self.assertQueued(1)

    def test_celeryRunOnCommit_sends_to_the_job_task_queue(self):
        job = self.factory.makeDoFooJob()  # to the section's queue
        job.task_queue = self.slow_queue
        job.celeryRunOnCommit()
        transaction.commit()
        self.assertQueued(1, self.slow_queue)
        self.assertQueued(1)

    def test_message_names_the_flushed_job_and_its_queue_limits(self):
        from jobs.testing.foojob import DoFooJob, FooJob, FooJobType
        job = Job()
        self.store.add(job)
        self.store.add(FooJob(job, self.factory.makeFoo(),
                              FooJobType.DO_FOO))
        # Not flushed yet: celeryRunOnCommit flushes for the id.
        DoFooJob(self.store.find(FooJob).one()).celeryRunOnCommit()
        transaction.commit()
        self.assertIsNotNone(job.id)
        self.assertQueued(1)
        # Celery's header holds [hard, soft].
        self.assertEqual([("jobs.run_job", [job.id], [90, 60], None)],
                         self.broker.take(self.queue))

    def test_sections_without_celery_dispatch_send_nothing_by_themselves(self):
        from jobs.testing.foojob import DoBarJob
        DoBarJob.create(self.factory.makeFoo())
        transaction.commit()
        # By hand, to [celery] default_queue: the only message.
        DoBarJob.create(self.factory.makeFoo()).celeryRunOnCommit()
        transaction.commit()
        self.assertQueued(1)

    def test_jobs_retry_sends_the_job_again(self):
        from jobs.cli import main
        job_id = self.make_job()
        self.assertQueued(1)
        self.broker.take(self.queue)
        self.store.execute("UPDATE job SET status = 3 WHERE id = ?",
                           (job_id,))
        transaction.commit()
        self.assertEqual(0, main(["retry", str(job_id)]))
        self.assertEqual([("jobs.run_job", [job_id], [90, 60], None)],
                         self.broker.take(self.queue))


class TestDispatchRedis(DispatchTests, CeleryTestCase):
    __test__ = True


class TestDispatchRabbitMQ(DispatchTests, CeleryTestCase):
    __test__ = True
    broker_kind = "amqp"


class WorkerTests:
    """One worker subprocess on the test's queue."""

    def setUp(self):
        super().setUp()
        self.worker = self.start_worker()

    def test_committed_job_is_completed_by_the_worker(self):
        job_id = self.make_job(record=True)
        self.wait_for_status(job_id, JobStatus.COMPLETED)
        [(attempt, pid)] = self.executions(job_id)
        self.assertEqual(1, attempt)
        self.assertNotEqual(os.getpid(), pid)
        # The runner's own log lines. Celery logs "succeeded in" once
        # the task has returned, after the outcome's commit: wait for it.
        self.assertThat(self.worker.text(), Contains(
            "Running DoFooJob (ID %d), attempt 1" % job_id))
        self.assertTrue(wait_until(
            lambda: "succeeded in" in self.worker.text(), 10),
            self.worker.text())

    def test_results_and_dependencies_through_celery(self):
        # The dependent is sent when its dependency's outcome makes it
        # ready (not at creation, when it is BLOCKED), and its run reads
        # the dependency's result.
        first = self.factory.makeDoFooJob(return_={"rows": 7})
        then = self.factory.makeDoFooJob(depends_on=[first], record=True)
        transaction.commit()
        self.wait_for_status(then.job_id, JobStatus.COMPLETED)
        self.assertEqual({first.job_id: {"rows": 7}},
                         then.dependency_results())
        self.assertEqual([1], [a for a, _ in self.executions(then.job_id)])

    def test_failing_job_ends_failed_with_an_oops(self):
        job_id = self.make_job(raise_="error")
        self.wait_for_status(job_id, JobStatus.FAILED)
        wait_until(lambda: self.oopses(), 10)
        [report] = self.oopses()
        self.assertEqual(("ValueError", job_id),
                         (report["type"], report["job_id"]))
        self.assertThat(self.worker.text(), Contains(
            "Job resulted in OOPS: %s" % report["id"]))

    def test_retrying_job_retries_through_celery_and_completes(self):
        job = self.factory.makeDoFooJob(
            retry_until=2, retry_delay=1, record=True)
        job.job.max_retries = 1
        job_id = job.job_id
        transaction.commit()
        self.wait_for_status(job_id, JobStatus.COMPLETED)
        # Both attempts committed their work (a retry keeps it).
        self.assertEqual([1, 2], [a for a, _ in self.executions(job_id)])
        text = self.worker.text()
        self.assertThat(text, Contains("Scheduling retry due to RetryError"))
        self.assertThat(text, Contains(
            "Job %d is due in" % job_id))

    def test_same_message_twice_runs_the_job_once(self):
        job = self.factory.makeDoFooJob(record=True, sleep=0.5)
        job_id = job.job_id
        transaction.commit()  # the first message
        send_jobs([(job_id, self.queue)])  # the same, again
        self.wait_for_status(job_id, JobStatus.COMPLETED)
        self.assertTrue(wait_until(
            lambda: "Job %d is not ready" % job_id in self.worker.text(), 30),
            "the second message was not handled")
        self.assertEqual(1, len(self.executions(job_id)))


class TestWorkerRedis(WorkerTests, CeleryTestCase):
    __test__ = True


class TestWorkerRabbitMQ(WorkerTests, CeleryTestCase):
    __test__ = True
    broker_kind = "amqp"


class TestSoftTimeLimit(CeleryTestCase):
    """A job past its queue's soft limit moves to the slow queue."""

    __test__ = True

    time_limits = {"jobs": (1, 20), "slow": (30, 60)}

    def test_soft_time_limit_moves_the_job_to_the_slow_queue(self):
        worker = self.start_worker([self.queue, self.slow_queue])
        job_id = self.make_job(sleep=2, record=True)
        self.wait_for_status(job_id, JobStatus.COMPLETED)
        # The first attempt's work was rolled back; the second ran whole.
        self.assertEqual([2], [a for a, _ in self.executions(job_id)])
        self.assertThat(worker.text(), Contains(
            "Job %d passed the soft time limit of queue %s (1.0 s):"
            " sending it to %s." % (job_id, self.queue, self.slow_queue)))
        self.assertEqual([], self.oopses())


def run_sweep(test, section="do_foo_celery"):
    """Run ``run_jobs.py --celery-sweep SECTION`` in-process; return its
    exit status and log."""
    logger = test.useFixture(fixtures.FakeLogger(
        name="sweep", level=logging.INFO))
    script = JobCronScript(
        test_args=["--celery-sweep", section], commandline_config=True,
        logger=logging.getLogger("sweep"))
    return script.lock_and_run(), logger.output


class TestSweep(CeleryTestCase):
    """The sweep without a worker: what it sends, looking at the queue."""

    __test__ = True
    sweep_grace = 60

    def setUp(self):
        super().setUp()
        self.clock = self.useFixture(FrozenClockFixture()).clock

    def test_sweep_sends_only_jobs_ready_for_longer_than_the_grace(self):
        self.make_job()  # sent once, on commit
        code, output = run_sweep(self)
        self.assertEqual(0, code, output)
        self.assertThat(output, Contains("Sent 0 do_foo_celery jobs"))
        self.assertQueued(1)
        self.clock.advance(timedelta(seconds=61))
        code, output = run_sweep(self)
        self.assertEqual(0, code, output)
        self.assertThat(output, Contains("Sent 1 do_foo_celery jobs"))
        self.assertQueued(2)

    def test_sweep_of_a_section_without_celery_dispatch_is_an_error(self):
        code, output = run_sweep(self, "do_foo")
        self.assertEqual(2, code)
        self.assertThat(output, Contains(
            "Section do_foo does not send its jobs to Celery"))


class TestSoftTimeLimitInTheSlowQueue(CeleryTestCase):
    """Past the slow queue's soft limit too, the job fails with an OOPS."""

    __test__ = True
    time_limits = {"jobs": (1, 20), "slow": (1, 20)}

    def test_soft_time_limit_in_the_fallback_queue_is_a_failure(self):
        worker = self.start_worker([self.queue, self.slow_queue])
        job_id = self.make_job(sleep=3)
        self.wait_for_status(job_id, JobStatus.FAILED)
        wait_until(lambda: self.oopses(), 10)
        [report] = self.oopses()
        self.assertEqual(("SoftTimeLimitExceeded", job_id),
                         (report["type"], report["job_id"]))
        self.assertThat(worker.text(), Contains("sending it to %s."
                                                % self.slow_queue))


class TestBrokerDown(CeleryTestCase):
    """A private redis-server that the test stops and starts."""

    __test__ = True

    def make_broker(self):
        self.redis = self.useFixture(PrivateRedisFixture())
        return BrokerFixture("redis", url=self.redis.url)

    def sweep(self):
        return run_sweep(self)

    def test_commits_succeed_while_the_broker_is_down_and_the_sweep_sends(self):
        captured = self.useFixture(fixtures.FakeLogger(
            name="jobs.celery.dispatch", level=logging.INFO))
        started = time.monotonic()
        job_ids = [self.make_job(record=True) for _ in range(3)]
        self.assertLess(time.monotonic() - started, 20)
        self.assertThat(captured.output, Contains(
            "run_jobs.py --celery-sweep will send them"))
        self.assertEqual({JobStatus.WAITING},
                         {self.status_of(job_id) for job_id in job_ids})
        # The sweep cannot send either: exit status 1, and says why.
        code, output = self.sweep()
        self.assertEqual(1, code, output)
        self.assertThat(output, Contains("Could not send"))
        # The broker is back: the sweep sends, a worker runs them.
        self.redis.start()
        self.start_worker()
        code, output = self.sweep()
        self.assertEqual(0, code, output)
        self.assertThat(output, Contains(
            "Sent 3 do_foo_celery jobs ready for more than 0.0 s"))
        for job_id in job_ids:
            self.wait_for_status(job_id, JobStatus.COMPLETED)
            self.assertEqual(1, len(self.executions(job_id)))


class TestExactlyOnce(CeleryTestCase):
    """Two Celery workers and a cron runner share one section."""

    __test__ = True

    broker_kind = "amqp"
    jobs = 5000

    def test_two_workers_and_a_cron_runner_run_each_job_once(self):
        workers = [self.start_worker(name="a"), self.start_worker(name="b")]
        from jobs.testing.foojob import DoFooJob
        foo = self.factory.makeFoo()
        job_ids = [DoFooJob.create(foo, record=True).job_id
                   for _ in range(self.jobs)]
        transaction.commit()  # sends a message per job
        # The cron runner claims in batches, racing the workers' claims.
        cron_log = self.config_fixture.lock_dir + "-cron.log"
        with open(cron_log, "w") as log:
            cron = subprocess.Popen(
                [sys.executable, RUN_JOBS, "--batch-size", "10",
                 "do_foo_celery"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log)
        self.addCleanup(lambda: cron.poll() is None and cron.kill())
        if not wait_until(lambda: self.store.execute(
                "SELECT count(*) FROM job WHERE status = ?",
                (JobStatus.COMPLETED.value,)).get_one()[0] == self.jobs
                or transaction.abort(), 420, 0.5):
            self.fail("Not every job completed.")
        transaction.abort()
        self.assertEqual(0, cron.wait(60))
        pids = assert_each_ran_once(self, self.store, job_ids)
        transaction.abort()
        # The cron runner and each worker's process all took part.
        self.assertEqual(3, len(pids), open(cron_log).read()[-1000:])


class TestFunctionJobs(CeleryTestCase):
    """``@task`` jobs of a Celery-enabled section: sent on commit, run by
    the worker like any job."""

    __test__ = True
    extra_sections = tasks.SECTION + "celery_dispatch: true\n"

    def setUp(self):
        super().setUp()
        self.worker = self.start_worker()

    def test_delay_sends_on_commit_and_the_worker_runs_it(self):
        job = tasks.behave.delay(record=77)
        failing = tasks.behave.delay(raise_="error")
        transaction.commit()
        self.wait_for_status(job.job_id, JobStatus.COMPLETED)
        self.wait_for_status(failing.job_id, JobStatus.FAILED)
        self.assertEqual(1, len(self.executions(77)))
        wait_until(lambda: self.oopses(), 10)
        [report] = self.oopses()
        self.assertEqual(("ValueError", failing.job_id),
                         (report["type"], report["job_id"]))
        self.assertThat(self.worker.text(), Contains(
            "Running FunctionJob (ID %d), attempt 1" % job.job_id))


class TestWorkerKeepsTheCelerySectionsLimits(CeleryTestCase):
    """A source served by a Celery-enabled section and a plain one (the
    test configuration's ``do_foo_celery`` and ``do_foo``) runs in the
    Celery worker as the Celery-enabled section, with its limits: the
    plain section, first in the configuration, sets none."""

    __test__ = True
    extra_sections = "max_running_per_key: 1\n"

    def test_a_full_key_holds_the_message_back(self):
        from jobs.celery.task import TaskRunner
        running = self.factory.makeDoFooJob(concurrency_key="k")
        waiting = self.factory.makeDoFooJob(concurrency_key="k")
        transaction.commit()
        self.store.execute(
            "UPDATE job SET status = ?, lease_expires = now() AT TIME ZONE"
            " 'UTC' + interval '1 hour' WHERE id = ?",
            (JobStatus.RUNNING.value, running.job_id))
        transaction.commit()
        self.assertEqual(
            "limited", TaskRunner(self.config).run(waiting.job_id, self.queue))
        self.assertEqual(JobStatus.WAITING, self.status_of(waiting.job_id))
