"""The job row: transitions, leases, readiness, on PostgreSQL and SQLite."""

import threading
from datetime import timedelta

import transaction
from testtools.matchers import Equals, GreaterThan, LessThan
from zope.interface.verify import verifyObject

from jobs.database import get_store
from jobs.errors import InvalidTransition, LeaseHeld, StaleJob
from jobs.model import dependencies, records
from jobs.interfaces.job import IJob, JobStatus
from jobs.model.job import VALID_TRANSITIONS, Job
from jobs.testing.fixtures import FrozenClockFixture
from jobs.testing.testcase import DatabaseTestCase, on_each_database

S = JobStatus

# How each transition is asked for (the method that makes it).
METHOD_FOR = {
    (S.WAITING, S.RUNNING): "start",
    (S.WAITING, S.SUSPENDED): "suspend",
    (S.RUNNING, S.WAITING): "queue",
    (S.RUNNING, S.COMPLETED): "complete",
    (S.RUNNING, S.FAILED): "fail",
    (S.RUNNING, S.SUSPENDED): "suspend",
    (S.COMPLETED, S.WAITING): "queue",
    (S.FAILED, S.WAITING): "queue",
    (S.SUSPENDED, S.WAITING): "resume",
    (S.WAITING, S.CANCELLED): "cancel",
    (S.SUSPENDED, S.CANCELLED): "cancel",
    (S.BLOCKED, S.CANCELLED): "cancel",
}
# For a forbidden pair, the method that would make it, if one exists.
TARGET_METHODS = {
    S.RUNNING: "start",
    S.COMPLETED: "complete",
    S.FAILED: "fail",
    S.SUSPENDED: "suspend",
    S.CANCELLED: "cancel",
}


@on_each_database
class TestTransitions(DatabaseTestCase):

    def make_job_in(self, status):
        job = self.factory.makeJob()
        transaction.commit()
        if status is S.WAITING:
            return job
        if status is S.SUSPENDED:
            job.suspend()
            return job
        if status is S.CANCELLED:
            job.cancel()
            return job
        if status is S.BLOCKED:
            dependencies.add_dependencies(
                self.store, job.id, [self.factory.makeJob().id])
            self.store.invalidate(job)
            return job
        job.acquireLease()
        job.start()
        if status is S.COMPLETED:
            job.complete()
        elif status is S.FAILED:
            job.fail()
        return job

    def test_every_allowed_pair_moves(self):
        # Table-driven over DESIGN.md's lifecycle table.
        for (source, target), method in METHOD_FOR.items():
            self.assertIn(target, VALID_TRANSITIONS[source])
            job = self.make_job_in(source)
            self.assertEqual(source, job.status)
            getattr(job, method)()
            self.assertEqual(
                target, job.status, "%s -> %s" % (source.name, target.name))
            # The row in the database says so too.
            transaction.commit()
            self.store.invalidate(job)
            self.assertEqual(target, job.status)

    def test_every_forbidden_pair_raises(self):
        tried = 0
        for source in S.items:
            for target, method in TARGET_METHODS.items():
                if target in VALID_TRANSITIONS[source]:
                    continue
                if (source, target) == (S.RUNNING, S.RUNNING):
                    continue  # reclaiming an orphan: see TestLeases
                if (source, target) == (S.RUNNING, S.CANCELLED):
                    continue  # a request: see test_cancel_running
                job = self.make_job_in(source)
                error = self.assertRaises(
                    InvalidTransition, getattr(job, method))
                self.assertEqual(
                    "Transition from %s to %s is invalid."
                    % (source.name, target.name), str(error))
                self.assertEqual(source, job.status)
                tried += 1
        # resume() from anything but SUSPENDED
        for source in (S.WAITING, S.RUNNING, S.COMPLETED, S.FAILED,
                       S.CANCELLED, S.BLOCKED):
            job = self.make_job_in(source)
            self.assertRaises(InvalidTransition, job.resume)
            tried += 1
        self.assertThat(tried, GreaterThan(10))

    def test_cancel_running_is_a_request(self):
        job = self.make_job_in(S.RUNNING)
        job.cancel()
        transaction.commit()
        self.assertEqual((S.RUNNING, True), (job.status, job.cancel_requested))
        # The runner carries the request out, fenced on its attempt.
        self.assertTrue(records.record(
            get_store(), job.id, job.attempt_count, S.CANCELLED))
        get_store().invalidate(job)
        self.assertEqual(S.CANCELLED, job.status)

    def test_start_counts_attempts_and_dates(self):
        job = self.make_job_in(S.WAITING)
        job.acquireLease()
        job.start()
        self.assertEqual(1, job.attempt_count)
        self.assertIsNotNone(job.date_started)
        self.assertIsNone(job.date_finished)
        job.queue()
        self.assertIsNone(job.lease_expires)
        self.assertIsNotNone(job.date_finished)
        job.acquireLease()
        job.start()
        self.assertEqual(2, job.attempt_count)
        self.assertIsNone(job.date_finished)

    def test_manage_transaction_false_makes_no_commit(self):
        job = self.make_job_in(S.WAITING)
        job_id = job.id
        job.acquireLease()
        job.start(manage_transaction=False)
        transaction.abort()
        self.assertEqual(S.WAITING, self.store.get(Job, job_id).status)

    def test_manage_transaction_commits(self):
        job = self.make_job_in(S.WAITING)
        job.acquireLease()
        job.start(manage_transaction=True)
        transaction.abort()
        self.assertEqual(S.RUNNING, job.status)

    def test_fail_with_manage_transaction_rolls_back_first(self):
        job = self.make_job_in(S.RUNNING)
        foo = self.factory.makeFoo("before")
        transaction.commit()
        foo.name = "changed by the job"
        job.fail(manage_transaction=True)
        self.assertEqual(S.FAILED, job.status)
        self.assertEqual("before", foo.name)

    def test_complete_with_manage_transaction_commits_the_work(self):
        job = self.make_job_in(S.RUNNING)
        foo = self.factory.makeFoo("before")
        transaction.commit()
        foo.name = "changed by the job"
        job.complete(manage_transaction=True)
        transaction.abort()
        self.assertEqual("changed by the job", foo.name)
        self.assertEqual(S.COMPLETED, job.status)

    def test_job_provides_IJob(self):
        job = self.make_job_in(S.WAITING)
        self.assertTrue(verifyObject(IJob, job))

    def test_is_pending(self):
        for status in S.items:
            job = self.make_job_in(status)
            self.assertEqual(
                status in (S.WAITING, S.RUNNING, S.SUSPENDED, S.BLOCKED),
                job.is_pending)

    def test_createMultiple(self):
        ids = Job.createMultiple(self.store, 3)
        transaction.commit()
        self.assertEqual(3, len(set(ids)))
        for job_id in ids:
            self.assertEqual(S.WAITING, self.store.get(Job, job_id).status)


@on_each_database
class TestLeases(DatabaseTestCase):

    def test_acquireLease_sets_lease_from_database_clock(self):
        frozen = self.useFixture(FrozenClockFixture())
        job = self.factory.makeJob()
        job.acquireLease(300)
        self.assertEqual(frozen.clock.frozen_at + timedelta(seconds=300),
                         job.lease_expires)
        self.assertEqual(300.0, job.getTimeout())

    def test_acquireLease_when_held_raises(self):
        job = self.factory.makeJob()
        job.acquireLease()
        self.assertRaises(LeaseHeld, job.acquireLease)

    def test_expired_lease_can_be_taken(self):
        job = self.factory.makeJob()
        job.acquireLease(-1)
        job.acquireLease(300)
        self.assertThat(job.getTimeout(), GreaterThan(290))

    def test_getTimeout_never_negative(self):
        job = self.factory.makeJob()
        self.assertEqual(0.0, job.getTimeout())
        job.acquireLease(-60)
        self.assertEqual(0.0, job.getTimeout())

    def test_finished_job_cannot_be_leased(self):
        for status in (S.COMPLETED, S.FAILED, S.SUSPENDED):
            job = self.factory.makeJob(status=status)
            self.assertRaises(LeaseHeld, job.acquireLease)

    def test_running_job_with_expired_lease_is_reclaimed_as_new_attempt(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        job = self.factory.makeJob()
        job.acquireLease(60)
        stale_runner_attempt = job.start()
        transaction.commit()
        clock.advance(timedelta(seconds=61))
        job.acquireLease(60)
        job.start()
        self.assertEqual(2, job.attempt_count)
        transaction.commit()
        # The stale runner's late complete() must not overwrite attempt 2.
        self.assertRaises(StaleJob, job.complete,
                          attempt=stale_runner_attempt)
        self.assertEqual(S.RUNNING, job.status)
        self.assertEqual(2, job.attempt_count)

    def race(self, contender, rounds):
        """Run `contender(job_id)` in two threads at once, `rounds` times.

        :return: a list, per round, of the two results.
        """
        results = []
        for _ in range(rounds):
            job_id = self.factory.makeJob().id
            transaction.commit()
            barrier = threading.Barrier(2)
            outcome = [None, None]

            def run(slot, barrier=barrier, outcome=outcome, job_id=job_id):
                barrier.wait()
                try:
                    outcome[slot] = contender(job_id)
                finally:
                    transaction.abort()
                    from jobs.database import disconnect
                    disconnect()

            threads = [threading.Thread(target=run, args=(i,))
                       for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            results.append(outcome)
        return results

    def test_acquireLease_race_has_exactly_one_winner(self):
        def contender(job_id):
            job = get_store().get(Job, job_id)
            try:
                job.acquireLease(300)
                transaction.commit()
                return "won"
            except LeaseHeld:
                return "lost"

        results = self.race(contender, 200)
        self.assertEqual([["lost", "won"]] * 200,
                         [sorted(outcome) for outcome in results])


@on_each_database
class TestReadyJobs(DatabaseTestCase):

    def ready_ids(self):
        return set(self.store.find(Job.id, Job.id.is_in(Job.ready_jobs)))

    def test_ready_jobs(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        now = clock.frozen_at
        make = self.factory.makeJob
        new = make()
        expired_waiting = make(lease_expires=now - timedelta(seconds=1))
        due = make(scheduled_start=now - timedelta(seconds=1))
        orphan = make(status=S.RUNNING,
                      lease_expires=now - timedelta(seconds=1))
        running = make(status=S.RUNNING, lease_expires=now + timedelta(60))
        running_no_lease = make(status=S.RUNNING)
        leased = make(lease_expires=now + timedelta(seconds=60))
        future = make(scheduled_start=now + timedelta(seconds=60))
        finished = [make(status=status)
                    for status in (S.COMPLETED, S.FAILED, S.SUSPENDED)]
        transaction.commit()
        self.assertEqual(
            {new.id, expired_waiting.id, due.id, orphan.id},
            self.ready_ids())
        excluded = {running.id, running_no_lease.id, leased.id, future.id}
        excluded |= {job.id for job in finished}
        self.assertEqual(set(), excluded & self.ready_ids())

    def test_future_job_becomes_ready_when_due(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        job = self.factory.makeJob(
            scheduled_start=clock.frozen_at + timedelta(minutes=10))
        self.assertFalse(job.is_runnable)
        self.assertEqual(set(), self.ready_ids())
        clock.advance(timedelta(minutes=10))
        self.assertTrue(job.is_runnable)
        self.assertEqual({job.id}, self.ready_ids())

    def test_is_runnable_ignores_the_lease(self):
        job = self.factory.makeJob()
        job.acquireLease()
        self.assertTrue(job.is_runnable)

    def test_times_round_trip_as_aware_utc(self):
        job = self.factory.makeJob()
        transaction.commit()
        self.store.invalidate(job)
        self.assertThat(job.date_created.utcoffset(), Equals(timedelta(0)))
        from datetime import datetime, timezone
        age = datetime.now(timezone.utc) - job.date_created
        self.assertThat(abs(age.total_seconds()), LessThan(60))
