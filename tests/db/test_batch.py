"""Batch claiming, group commit and budgets, on PostgreSQL and SQLite."""

import threading
from datetime import timedelta

import transaction
from storm.tracer import install_tracer, remove_tracer
from jobs.database import disconnect, get_store, prepared
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.metrics import tally
from jobs.model import claims
from jobs.model.job import Job
from jobs.runner import JobRunner
from jobs.sections import RunSettings
from jobs.testing.fixtures import CommitCounterFixture, FrozenClockFixture
from jobs.testing.foojob import DoBarJob, DoFooJob, Foo
from jobs.testing.testcase import DatabaseTestCase, on_each_database


def runner(logger, batch_size=10, group_commit=0, **kwargs):
    """A `JobRunner` over DoFooJob's ready jobs."""
    return JobRunner(logger=logger, source=DoFooJob, settings=RunSettings(
        batch_size=batch_size, group_commit=group_commit), **kwargs)


def ids(claimed):
    return [one.job_id for one in claimed]


@on_each_database
class TestClaim(DatabaseTestCase):

    def make_jobs(self, count, **behaviour):
        jobs = [self.factory.makeDoFooJob(**behaviour) for _ in range(count)]
        transaction.commit()
        return jobs

    def test_claims_up_to_limit_as_running_attempts(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        jobs = self.make_jobs(5)
        claimed = DoFooJob.claimReady(3)
        transaction.commit()
        self.assertEqual([job.job_id for job in jobs[:3]], ids(claimed))
        self.assertEqual([1, 1, 1], [one.attempt for one in claimed])
        for job in jobs[:3]:
            self.assertEqual(JobStatus.RUNNING, job.status)
            self.assertEqual(1, job.attempt_count)
            self.assertEqual(clock.frozen_at + job.lease_duration,
                             job.lease_expires)
        self.assertEqual([job.job_id for job in jobs[3:]],
                         ids(DoFooJob.claimReady(10)))
        self.assertEqual([], DoFooJob.claimReady(10))

    def test_objects_read_before_a_claim_see_it_in_its_transaction(self):
        # The claim's UPDATE goes behind the ORM: the rows the store holds
        # read the database again (no commit in between).
        [job] = self.make_jobs(1)
        self.assertEqual(JobStatus.WAITING, job.status)
        [claimed] = DoFooJob.claimReady(1)
        self.assertEqual((JobStatus.RUNNING, 1),
                         (job.status, job.attempt_count))
        self.assertEqual(1, claims.release(self.store, [
            (claimed.job_id, claimed.attempt)]))
        self.assertEqual((JobStatus.WAITING, 0),
                         (job.status, job.attempt_count))

    def test_claims_only_its_own_type(self):
        foo_job = self.factory.makeDoFooJob()
        self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        self.assertEqual([foo_job.job_id], ids(DoFooJob.claimReady(10)))

    def test_claimJob_claims_only_that_job_once_and_only_of_its_type(self):
        first, second = self.make_jobs(2)
        bar = self.factory.makeDoFooJob(job_class=DoBarJob)
        transaction.commit()
        [claimed] = DoFooJob.claimJob(second.job_id)
        transaction.commit()
        self.assertEqual((second.job_id, JobStatus.RUNNING, 1),
                         (claimed.job_id, second.status, claimed.attempt))
        # A duplicate message: taken. Another type's job: not ours.
        self.assertEqual([], list(DoFooJob.claimJob(second.job_id)))
        self.assertEqual([], list(DoFooJob.claimJob(bar.job_id)))
        self.assertEqual(JobStatus.WAITING, first.status)

    def test_claimJob_skips_a_job_not_yet_due(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        [job] = self.make_jobs(1)
        job.job.scheduled_start = clock.frozen_at + timedelta(seconds=5)
        transaction.commit()
        self.assertEqual([], list(DoFooJob.claimJob(job.job_id)))
        clock.advance(timedelta(seconds=5))
        self.assertEqual([job.job_id], ids(DoFooJob.claimJob(job.job_id)))

    def test_priority_first_then_oldest(self):
        low, high, middle = self.make_jobs(3)
        high.job.priority = 10
        middle.job.priority = 5
        transaction.commit()
        self.assertEqual([high.job_id, middle.job_id, low.job_id],
                         ids(DoFooJob.claimReady(10)))

    def test_skips_leased_future_and_finished_jobs(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        leased, future, finished, ready = self.make_jobs(4)
        leased.acquireLease()
        future.job.scheduled_start = clock.frozen_at + timedelta(minutes=1)
        finished.job.status = JobStatus.COMPLETED
        transaction.commit()
        self.assertEqual([ready.job_id], ids(DoFooJob.claimReady(10)))

    def test_orphans_are_claimed_as_new_attempts_marked_lost(self):
        # Whether the new attempt runs is the outcome policy's decision
        # (jobs.outcome.decide_lost), not the claim's.
        clock = self.useFixture(FrozenClockFixture()).clock
        retryable, exhausted, waiting = self.make_jobs(3)
        retryable.job.max_retries = 1
        for job in (retryable, exhausted):
            job.acquireLease()
            job.start()
        transaction.commit()
        clock.advance(timedelta(minutes=6))
        self.assertEqual(
            [(retryable.job_id, 2, 1, True), (exhausted.job_id, 2, 0, True),
             (waiting.job_id, 1, 0, False)],
            [(one.job_id, one.attempt, one.max_retries, one.lost)
             for one in DoFooJob.claimReady(10)])

    def test_release_gives_a_claimed_job_back(self):
        [job] = self.make_jobs(1)
        claimed = [(one.job_id, one.attempt)
                   for one in DoFooJob.claimReady(1)]
        self.assertEqual(1, claims.release(self.store, claimed))
        transaction.commit()
        self.assertEqual((JobStatus.WAITING, 0, None, None),
                         (job.status, job.attempt_count, job.lease_expires,
                          job.job.date_started))

    def test_release_leaves_a_claim_another_runner_took_over(self):
        mine, finished, other = self.make_jobs(3)
        claimed = [(one.job_id, one.attempt)
                   for one in DoFooJob.claimReady(3)]
        transaction.commit()
        # Its lease expired and another runner claimed it (attempt 2).
        self.store.execute(
            "UPDATE job SET attempt_count = 2 WHERE id = ?", (other.job_id,))
        self.store.execute(
            "UPDATE job SET status = ? WHERE id = ?",
            (JobStatus.COMPLETED.value, finished.job_id))
        self.assertEqual(1, claims.release(self.store, claimed))
        transaction.commit()
        self.assertEqual(
            [(JobStatus.WAITING, 0), (JobStatus.COMPLETED, 1),
             (JobStatus.RUNNING, 2)],
            [(job.status, job.attempt_count)
             for job in (mine, finished, other)])

    def test_concurrent_claimers_get_disjoint_jobs(self):
        self.make_jobs(200)
        claimed = [[], [], []]
        barrier = threading.Barrier(3)

        def claimer(mine):
            try:
                barrier.wait()
                while True:
                    taken = ids(DoFooJob.claimReady(7))
                    transaction.commit()
                    if not taken:
                        return
                    mine.extend(taken)
            finally:
                disconnect()

        threads = [threading.Thread(target=claimer, args=(mine,))
                   for mine in claimed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        every = [job_id for mine in claimed for job_id in mine]
        self.assertEqual(200, len(every))
        self.assertEqual(200, len(set(every)))


@on_each_database
class TestBatches(DatabaseTestCase):

    def setUp(self):
        super().setUp()
        self.logger = BufferLogger()

    def make_jobs(self, behaviours):
        jobs = [self.factory.makeDoFooJob(
                    foo=self.factory.makeFoo(), note="done", **behaviour)
                for behaviour in behaviours]
        transaction.commit()
        return jobs

    def status_and_note(self, job):
        self.store.invalidate()
        return job.status, self.store.get(Foo, job.context.foo_id).note

    def test_runs_every_outcome(self):
        # In batches, and one job a commit (each outcome's transaction
        # then claims the next job).
        S = JobStatus
        for batch_size in (2, 1):
            jobs = self.make_jobs([{}, {"raise_": "retry"},
                                   {"raise_": "user"}, {"raise_": "suspend"},
                                   {"raise_": "error"}])
            jobs[1].job.max_retries = 1
            transaction.commit()
            self.assertEqual(
                5, runner(self.logger, batch_size=batch_size).runAll())
            self.assertEqual(
                [(S.COMPLETED, "done"), (S.WAITING, "done"),
                 (S.FAILED, None), (S.SUSPENDED, "done"), (S.FAILED, None)],
                [self.status_and_note(job) for job in jobs])
        self.assertEqual(2, len(self.oopses()))

    def test_group_commit_isolates_a_failing_job(self):
        jobs = self.make_jobs([{}, {"raise_": "error"}, {}, {"raise_": "retry"},
                               {}])
        jobs[3].job.max_retries = 1
        transaction.commit()
        runner(self.logger, batch_size=10, group_commit=10).runAll()
        S = JobStatus
        self.assertEqual(
            [(S.COMPLETED, "done"), (S.FAILED, None), (S.COMPLETED, "done"),
             (S.WAITING, "done"), (S.COMPLETED, "done")],
            [self.status_and_note(job) for job in jobs])
        [oops] = self.oopses()
        self.assertEqual("ValueError", oops["type"])

    def counted_group(self, behaviours):
        """Run one group of jobs of `behaviours`; return the jobs and what
        the run counted: ``(completed, not completed, (COMPLETED tally's
        count, its duration buckets' total))``."""
        jobs = self.make_jobs(behaviours)
        tally.forget()
        self.addCleanup(tally.forget)
        run = runner(self.logger, batch_size=10, group_commit=10)
        run.runAll()
        row = run.tally.outcomes.get(("DoFooJob", "complete"), [0, 0.0])
        return jobs, (dict(run.completed), dict(run.incomplete),
                      (row[0], sum(row[2:])))

    def test_a_groups_completions_are_counted_when_it_commits(self):
        _, counted = self.counted_group([{}, {"raise_": "error"}, {}, {}])
        self.assertEqual(({"DoFooJob": 3}, {"DoFooJob": 1}, (3, 3)),
                         counted)

    def test_a_group_a_job_rolled_back_counts_its_jobs_not_completed(self):
        # The job's rollback undid the first job's work: that job runs
        # again; only the last one completed.
        jobs, counted = self.counted_group(
            [{}, {"misbehave": "transaction.abort"}, {}])
        self.assertEqual(({"DoFooJob": 1}, {"DoFooJob": 2}, (1, 1)),
                         counted)
        self.assertEqual(
            [JobStatus.WAITING, JobStatus.FAILED, JobStatus.COMPLETED],
            [self.status_and_note(job)[0] for job in jobs])

    def test_the_jobs_after_one_that_closed_the_store_get_a_new_one(self):
        # The group looks its store up once; a job that closes it ends
        # that, and the next job runs on a new connection.
        # A failing statement of a later job is undone by its savepoint
        # (opened on the new connection) without harm to the group.
        failing_sql = ("SELECT 1/0" if self.database_kind == "postgresql"
                       else "SELECT * FROM no_such_table")
        job_ids = [job.job_id for job in self.make_jobs(
            [{}, {"misbehave": "store.close"}, {"sql": failing_sql}, {}])]
        run = runner(self.logger, batch_size=10, group_commit=10)
        run.runAll()
        # (The job closed this thread's store: the test's too.)
        store = get_store()
        self.assertEqual(
            [JobStatus.WAITING, JobStatus.FAILED, JobStatus.FAILED,
             JobStatus.COMPLETED],
            [store.get(Job, job_id).status for job_id in job_ids])
        self.assertEqual({"DoFooJob": 1}, dict(run.completed))

    def test_group_commit_with_failed_sql(self):
        failing_sql = ("SELECT 1/0" if self.database_kind == "postgresql"
                       else "SELECT * FROM no_such_table")
        jobs = self.make_jobs([{}, {"sql": failing_sql}, {}])
        runner(self.logger, batch_size=3, group_commit=3).runAll()
        S = JobStatus
        self.assertEqual(
            [(S.COMPLETED, "done"), (S.FAILED, None), (S.COMPLETED, "done")],
            [self.status_and_note(job) for job in jobs])

    def test_group_commit_keeps_progress_and_log_tails(self):
        # In a group the job rows are locked by the runner's transaction:
        # progress is written with the outcome (a write from another
        # connection would wait for that transaction, forever).
        jobs = self.make_jobs([{"progress": [[1, 2, "half"]], "say": "hi"},
                               {"say": "quiet one"}, {}])
        runner(self.logger, batch_size=3, group_commit=3).runAll()
        self.store.invalidate()
        self.assertEqual([JobStatus.COMPLETED] * 3,
                         [job.status for job in jobs])
        self.assertIn('"half"', jobs[0].job.progress)
        self.assertIn("hi", jobs[0].job.log)
        self.assertIn("quiet one", jobs[1].job.log)
        self.assertIsNone(jobs[2].job.log)

    def statements_of_a_group_of_three(self):
        """Run the ready jobs, 3 to a group; return the SQL sent."""
        statements = []

        class Recorder:
            def connection_raw_execute(self, connection, raw_cursor,
                                       statement, params):
                statements.append(prepared.sql_of(statement))

        recorder = Recorder()
        install_tracer(recorder)
        try:
            runner(self.logger, batch_size=3, group_commit=3).runAll()
        finally:
            remove_tracer(recorder)
        return statements

    def test_group_sends_no_savepoint_for_jobs_without_sql(self):
        foo = self.factory.makeFoo()
        for behaviour in ({}, {"sql": "UPDATE foo SET note = 'sql'"}, {}):
            self.factory.makeDoFooJob(foo=foo, **behaviour)
        transaction.commit()
        statements = self.statements_of_a_group_of_three()
        self.assertEqual(1, len([statement for statement in statements
                                 if statement.startswith("SAVEPOINT")]))

    def test_info_lines_do_not_load_the_job_rows(self):
        # The per-job INFO lines of a claimed batch name the job by class
        # and id: a repr showing the status would load each job row, and
        # the group's outcomes would then be recorded one UPDATE a job.
        jobs = self.make_jobs([{}] * 3)
        statements = self.statements_of_a_group_of_three()
        log = self.logger.getLogBuffer()
        for job in jobs:
            self.assertIn("INFO    Running DoFooJob (ID %d), attempt 1\n"
                          % job.job_id, log)
            self.assertIn("DEBUG   Completed DoFooJob (ID %d).\n"
                          % job.job_id, log)
        self.assertEqual(
            [], [statement for statement in statements
                 if statement.startswith("SELECT job.attempt_count")])
        # The group's three outcomes, in one statement.
        self.assertEqual(1, len([
            statement for statement in statements
            if not statement.startswith("PREPARE ")
            and "UPDATE job SET status = %d" % JobStatus.COMPLETED.value
            in statement]))

    def test_commits_per_mode(self):
        self.make_jobs([{}] * 10)
        commits = self.useFixture(CommitCounterFixture()).commits
        runner(self.logger, batch_size=10).runAll()
        # one claim commit, one per job
        self.assertEqual(11, len(commits))
        self.make_jobs([{}] * 10)
        del commits[:]
        runner(self.logger, batch_size=10, group_commit=5).runAll()
        # one claim commit, one per group of five
        self.assertEqual(3, len(commits))

    def test_a_full_groups_commit_claims_the_next_group(self):
        jobs = self.make_jobs([{}] * 4)
        commits = self.useFixture(CommitCounterFixture()).commits
        runner(self.logger, batch_size=2, group_commit=2).runAll()
        # The first claim; the first group's outcomes with the claim of
        # the second; the second's with a claim that finds none.
        self.assertEqual(3, len(commits))
        self.store.invalidate()
        self.assertEqual([(JobStatus.COMPLETED, 1)] * 4,
                         [(job.status, job.attempt_count) for job in jobs])

    def test_per_job_commit_claims_the_next_job_with_each_outcome(self):
        jobs = self.make_jobs([{}] * 5)
        commits = self.useFixture(CommitCounterFixture()).commits
        runner(self.logger, batch_size=1).runAll()
        # The first claim, then one commit per job: its outcome and the
        # next job's claim together.
        self.assertEqual(6, len(commits))
        self.store.invalidate()
        self.assertEqual([(JobStatus.COMPLETED, 1)] * 5,
                         [(job.status, job.attempt_count) for job in jobs])

    def test_a_failed_jobs_outcome_commit_claims_the_next_job_too(self):
        jobs = self.make_jobs([{"raise_": "error"}, {"raise_": "user"}, {}])
        commits = self.useFixture(CommitCounterFixture()).commits
        runner(self.logger, batch_size=1).runAll()
        self.store.invalidate()
        # The failed job's work was rolled back first; the transaction
        # that records FAILED claims the next job: one commit a job, and
        # every job ran once, as its first attempt. (The OOPS index row
        # goes in through the side connection's own commit.)
        self.assertEqual(4, len([store for store in commits
                                 if store is self.store]))
        self.assertEqual(
            [(JobStatus.FAILED, 1), (JobStatus.FAILED, 1),
             (JobStatus.COMPLETED, 1)],
            [(job.status, job.attempt_count) for job in jobs])

    def test_a_fenced_outcome_undoes_the_claim_in_its_transaction(self):
        # The first job's attempt moves on while it runs (its own SQL
        # plays another runner's takeover): its outcome updates nothing,
        # its transaction (and any claim in it) is undone with the job's
        # work, and the next claim takes the next job.
        jobs = self.make_jobs([
            {"sql": "UPDATE job SET attempt_count = 5 WHERE status = 1"},
            {}, {}])
        self.assertEqual(3, runner(self.logger, batch_size=1).runAll())
        self.store.invalidate()
        self.assertEqual(
            [(JobStatus.RUNNING, 1), (JobStatus.COMPLETED, 1),
             (JobStatus.COMPLETED, 1)],
            [(job.status, job.attempt_count) for job in jobs])
        self.assertIn("attempt 1 was fenced", self.logger.getLogBuffer())

    def test_a_job_whose_lease_ran_out_is_not_taken_by_its_own_outcome(self):
        # Its lease ran out while it ran (its own SQL plays the clock): the
        # claim in its outcome's transaction must not take it as an
        # orphan, and takes the next job instead (one commit a job).
        jobs = self.make_jobs([
            {"sql": "UPDATE job SET lease_expires = '2000-01-01 00:00:00'"
                    " WHERE status = 1"},
            {}])
        commits = self.useFixture(CommitCounterFixture()).commits
        self.assertEqual(2, runner(self.logger, batch_size=1).runAll())
        self.assertEqual(3, len([store for store in commits
                                 if store is self.store]))
        self.store.invalidate()
        self.assertEqual([(JobStatus.COMPLETED, 1)] * 2,
                         [(job.status, job.attempt_count) for job in jobs])

    def test_stop_releases_the_job_claimed_with_the_last_outcome(self):
        jobs = self.make_jobs([{}] * 3)
        run = runner(self.logger, batch_size=1,
                     should_stop=lambda: sum(run.completed.values()) >= 1)
        self.assertEqual(1, run.runAll())
        self.store.invalidate()
        self.assertEqual(
            [(JobStatus.COMPLETED, 1), (JobStatus.WAITING, 0),
             (JobStatus.WAITING, 0)],
            [(job.status, job.attempt_count) for job in jobs])

    def test_max_jobs_budget(self):
        jobs = self.make_jobs([{}] * 5)
        run = runner(self.logger, batch_size=2, max_jobs=3)
        self.assertEqual(3, run.runAll())
        self.assertTrue(run.budget_reached)
        self.store.invalidate()
        self.assertEqual([JobStatus.COMPLETED] * 3 + [JobStatus.WAITING] * 2,
                         [job.status for job in jobs])

    def test_max_seconds_budget(self):
        self.make_jobs([{}] * 3)
        run = runner(self.logger, max_seconds=0)
        self.assertEqual(0, run.runAll())
        self.assertTrue(run.budget_reached)

    def test_stop_releases_claimed_unstarted_jobs(self):
        jobs = self.make_jobs([{}] * 4)
        started = []

        def should_stop():
            return sum(run.completed.values()) >= 1

        run = runner(self.logger, batch_size=4, should_stop=should_stop)
        started.append(run.runAll())
        self.store.invalidate()
        self.assertEqual(
            [(JobStatus.COMPLETED, 1)] + [(JobStatus.WAITING, 0)] * 3,
            [(job.status, job.attempt_count) for job in jobs])
        self.assertIn("Released 3 claimed jobs that had not started.",
                      self.logger.getLogBuffer())

    def test_lost_orphans_fail_with_oops(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        [job] = self.make_jobs([{}])
        job.acquireLease()
        job.start(manage_transaction=True)
        clock.advance(timedelta(minutes=6))
        runner(self.logger).runAll()
        self.store.invalidate()
        # The lost attempt is the last one counted: the claim that found
        # it lost did not run it.
        self.assertEqual((JobStatus.FAILED, 1), (job.status,
                                                 job.attempt_count))
        [oops] = self.oopses()
        self.assertEqual("LostRunner", oops["type"])

    def test_job_ids_survive(self):
        # Claiming never creates or loses rows.
        self.make_jobs([{}] * 3)
        runner(self.logger).runAll()
        self.assertEqual(3, self.store.find(Job).count())
        self.assertEqual(3, get_store().find(
            Job, Job.status == JobStatus.COMPLETED).count())


@on_each_database
class TestCancelBetweenJobs(DatabaseTestCase):

    def test_claimed_job_cancelled_before_it_starts_never_runs(self):
        first, second = (self.factory.makeDoFooJob(record=True)
                         for _ in range(2))
        transaction.commit()
        second_id = second.job_id
        logger = BufferLogger()

        class CancelSecond(JobRunner):
            def _run_batch(self, batch):
                # An operator cancels the second job once both are claimed;
                # the heartbeat (PostgreSQL) or the job's start (SQLite)
                # reads the request.
                store = get_store()
                store.get(Job, second_id).cancel()
                transaction.commit()
                if self.heartbeat is not None:
                    self.heartbeat.beat()
                super()._run_batch(batch)

        CancelSecond(logger=logger, source=DoFooJob,
                     settings=RunSettings(batch_size=2)).runAll()
        self.store.invalidate()
        self.assertEqual((JobStatus.COMPLETED, JobStatus.CANCELLED),
                         (first.status, second.status))
        self.assertEqual([(first.job_id,)], list(self.store.execute(
            "SELECT job FROM job_execution")))
        self.assertIn("before it started", logger.getLogBuffer())


class TestGroupLock(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def test_a_locked_group_cannot_be_reclaimed_until_it_commits(self):
        clock = self.useFixture(FrozenClockFixture()).clock
        job_ids = self.factory.makeManyDoFooJobs(3)
        self.store.execute("UPDATE job SET max_retries = 5")
        transaction.commit()
        claimed = [(one.job_id, one.attempt)
                   for one in DoFooJob.claimReady(3)]
        transaction.commit()
        self.assertEqual([], claims.lock(self.store, claimed)[0])
        # The leases run out while the group runs: a reclaimer skips the
        # locked rows instead of starting a second attempt.
        clock.advance(timedelta(hours=1))
        stolen = []

        def reclaimer():
            try:
                stolen.extend(ids(DoFooJob.claimReady(3)))
                transaction.commit()
            finally:
                disconnect()

        thread = threading.Thread(target=reclaimer)
        thread.start()
        thread.join(60)
        self.assertEqual([], stolen)
        transaction.commit()
        # Once the group's transaction ends the rows are free again.
        self.assertEqual(job_ids, sorted(ids(DoFooJob.claimReady(3))))

    def claimed(self, count):
        """``[(job_id, attempt)]`` of `count` new jobs, claimed and
        committed."""
        self.factory.makeManyDoFooJobs(count)
        transaction.commit()
        claimed = [(one.job_id, one.attempt)
                   for one in DoFooJob.claimReady(count)]
        transaction.commit()
        return claimed

    def test_claims_that_moved_on_are_dropped_from_the_group(self):
        claimed = self.claimed(2)
        first, second = (job_id for job_id, _ in claimed)
        # Another runner's attempt took the second job over.
        self.store.execute("UPDATE job SET attempt_count = 2 WHERE id = ?",
                           (second,))
        transaction.commit()
        self.assertEqual(([(second, 1)], set()),
                         claims.lock(self.store, claimed))

    def test_a_cancel_asked_for_since_the_claim_is_read_by_the_lock(self):
        claimed = self.claimed(3)
        first, second, third = (job_id for job_id, _ in claimed)
        self.store.execute(
            "UPDATE job SET cancel_requested = TRUE WHERE id IN (?, ?)",
            (second, third))
        # The third moved on too: it is lost, not cancelled here.
        self.store.execute("UPDATE job SET attempt_count = 2 WHERE id = ?",
                           (third,))
        transaction.commit()
        self.assertEqual(([(third, 1)], {second}),
                         claims.lock(self.store, claimed))


class TestLostDatabase(DatabaseTestCase):
    """PostgreSQL: the connection lost, or an outcome's commit refused, in
    the middle of a batch."""

    database_kind = "postgresql"
    __test__ = True

    def test_the_error_names_the_claims_that_never_started(self):
        from storm.exceptions import DisconnectionError
        first = self.factory.makeDoFooJob()
        doomed = self.factory.makeDoFooJob(
            sql="SELECT pg_terminate_backend(pg_backend_pid())")
        rest = [self.factory.makeDoFooJob() for _ in range(3)]
        transaction.commit()
        error = self.assertRaises(DisconnectionError,
                                  runner(BufferLogger(), batch_size=10).runAll)
        transaction.abort()  # Storm reconnects on the next statement
        self.assertEqual([(job.job_id, 1) for job in rest],
                         error.unstarted_claims)
        self.assertEqual(
            [JobStatus.COMPLETED, JobStatus.RUNNING] + [JobStatus.RUNNING] * 3,
            [job.job.status for job in [first, doomed] + rest])
        # Given back, they run as first attempts; the doomed one keeps its.
        self.assertEqual(
            3, claims.release(self.store, error.unstarted_claims))
        transaction.commit()
        self.assertEqual(
            [(JobStatus.RUNNING, 1)] + [(JobStatus.WAITING, 0)] * 3,
            [(job.job.status, job.job.attempt_count)
             for job in [doomed] + rest])

    def test_an_outcome_commit_that_fails_undoes_the_claim_it_held(self):
        # The first job's work breaks a deferred constraint: its
        # outcome's COMMIT fails, and the claim of the next job, made in
        # that transaction, goes with it: the runner neither runs nor
        # gives back a job it never held, and the next run takes it.
        from storm.exceptions import IntegrityError
        first = self.factory.makeDoFooJob(
            sql="CREATE TEMP TABLE jobs_deferred (x integer UNIQUE"
                " DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP; INSERT"
                " INTO jobs_deferred VALUES (1), (1)")
        second = self.factory.makeDoFooJob()
        transaction.commit()
        logger = BufferLogger()
        run = runner(logger, batch_size=1)
        error = self.assertRaises(IntegrityError, run.runAll)
        transaction.abort()
        self.assertEqual([], error.unstarted_claims)
        self.assertNotIn("Released", logger.getLogBuffer())
        self.assertEqual(
            [(JobStatus.RUNNING, 1), (JobStatus.WAITING, 0)],
            [(job.job.status, job.job.attempt_count)
             for job in (first, second)])
        self.assertEqual(1, runner(BufferLogger(), batch_size=1).runAll())
        self.assertEqual((JobStatus.COMPLETED, 1),
                         (second.job.status, second.job.attempt_count))
