"""A job committed on its own is recorded by the statement that claims
the next job (`jobs.model.records.Completion`, PostgreSQL): one round
trip a job, and no COMMIT when the job's code sent no SQL."""

import psycopg2
import transaction

from jobs.database import get_store, prepared
from jobs.database.stormext import BeginWithFirstStatement, dsn_of
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model.job import Job
from jobs.runner import JobRunner
from jobs.sections import RunSettings
from jobs.testing.foojob import DoFooJob, FooJobDerived
from jobs.testing.testcase import DatabaseTestCase

S = JobStatus


def runner(logger, batch_size=1):
    return JobRunner(logger=logger, source=DoFooJob,
                     settings=RunSettings(batch_size=batch_size))


class TestCompletingClaim(DatabaseTestCase):
    """PostgreSQL only: SQLite's claim carries no outcome (it claims with
    a SELECT then an UPDATE)."""

    __test__ = True
    database_kind = "postgresql"

    def setUp(self):
        super().setUp()
        self.logger = BufferLogger()

    def sent(self):
        """What the main connection sends from now on, in order: ``"in
        transaction"`` (a statement in one, BEGIN included), ``"alone"``
        (a statement committed by itself) and ``"COMMIT"``."""
        sent = []
        execute = BeginWithFirstStatement._execute
        alone = BeginWithFirstStatement._execute_alone
        end = BeginWithFirstStatement._end

        def in_transaction(self, cursor, statement, params=None):
            sent.append("in transaction")
            return execute(self, cursor, statement, params)

        def by_itself(self, cursor, statement, params=None):
            sent.append("alone")
            return alone(self, cursor, statement, params)

        def ending(self, statement):
            if self.__dict__["in_transaction"]:
                sent.append(statement)
            return end(self, statement)

        self.patch(BeginWithFirstStatement, "_execute", in_transaction)
        self.patch(BeginWithFirstStatement, "_execute_alone", by_itself)
        self.patch(BeginWithFirstStatement, "_end", ending)
        # (commit and rollback are bound to `_end` when the class is made.)
        self.patch(BeginWithFirstStatement, "commit",
                   lambda self: ending(self, "COMMIT"))
        self.patch(BeginWithFirstStatement, "rollback",
                   lambda self: ending(self, "ROLLBACK"))
        return sent

    def make_jobs(self, count, **behaviour):
        jobs = [self.factory.makeDoFooJob(**behaviour) for _ in range(count)]
        transaction.commit()
        return jobs

    def rows(self, jobs):
        self.store.invalidate()
        return [(job.job.status, job.job.attempt_count) for job in jobs]

    def taken_over_while_running(self, taken):
        """Another runner takes `taken` over while it runs (a new
        attempt, as after its lease ran out)."""
        taken_id = taken.job_id
        dsn = dsn_of(get_store().get_database())
        real_run = FooJobDerived.run

        def run(job):
            if job.attempt.job_id == taken_id:
                with psycopg2.connect(dsn) as connection:
                    connection.cursor().execute(
                        "UPDATE job SET attempt_count = attempt_count + 1,"
                        " claimed_by = 'other' WHERE id = %s", (taken_id,))
            return real_run(job)

        self.patch(FooJobDerived, "run", run)

    def warm_up(self):
        """Prepare the run's statements on this session (a PREPARE opens
        a transaction of its own)."""
        self.make_jobs(2)
        self.assertEqual(2, runner(self.logger).runAll())

    def warm_up_batch(self):
        """The same for batches (the statement that records a start with
        an outcome)."""
        self.make_jobs(3)
        self.assertEqual(3, runner(self.logger, batch_size=3).runAll())

    def test_jobs_that_send_no_sql_cost_one_statement_each_and_no_commit(self):
        self.warm_up()
        jobs = self.make_jobs(3)
        sent = self.sent()
        self.assertEqual(3, runner(self.logger).runAll())
        # The first claim, its commit, then each job's outcome with the
        # next claim (the last one claims nothing).
        self.assertEqual(["in transaction", "COMMIT"] + ["alone"] * 3,
                         sent[:])
        self.assertEqual([(S.COMPLETED, 1)] * 3, self.rows(jobs))
        for job in jobs:
            self.assertIsNotNone(job.job.date_finished)
            self.assertIsNone(job.job.lease_expires)

    def test_a_job_that_sends_sql_is_committed_with_its_outcome(self):
        self.warm_up()
        jobs = self.make_jobs(2, sql="UPDATE foo SET note = 'written'")
        sent = self.sent()
        self.assertEqual(2, runner(self.logger).runAll())
        self.assertEqual(["in transaction", "COMMIT"]
                         + ["in transaction", "in transaction", "COMMIT"]
                         * 2, sent[:])
        self.assertEqual([(S.COMPLETED, 1)] * 2, self.rows(jobs))
        self.assertEqual(
            ["written"], list(self.store.execute(
                "SELECT DISTINCT note FROM foo").get_all()[0]))

    def test_its_result_log_and_progress_are_recorded(self):
        self.warm_up()
        job, = self.make_jobs(1, return_={"sum": 3}, say="hello",
                              progress=[[1, 2, "half"]])
        self.assertEqual(1, runner(self.logger).runAll())
        self.store.invalidate()
        row = self.store.get(Job, job.job_id)
        self.assertEqual((S.COMPLETED, {"sum": 3}), (row.status, row.result))
        self.assertIn("hello", row.log)
        self.assertIn("half", row.progress)

    def test_a_job_with_dependents_settles_them_in_its_outcome(self):
        first = self.factory.makeDoFooJob(return_=7)
        then = self.factory.makeDoFooJob(depends_on=[first])
        transaction.commit()
        self.assertEqual(2, runner(self.logger).runAll())
        self.assertEqual([(S.COMPLETED, 1)] * 2, self.rows([first, then]))

    def test_a_job_taken_over_while_running_keeps_its_new_owner(self):
        # Another runner takes the first job over while it runs (as after
        # its lease ran out): its outcome is dropped, but the next job,
        # claimed by the same statement (committed by itself), is run.
        self.warm_up()
        taken, other = self.make_jobs(2)
        self.taken_over_while_running(taken)
        sent = self.sent()
        self.assertEqual(2, runner(self.logger).runAll())
        # The first job's outcome with the next claim, committed by
        # itself; its outcome alone again (refused: fenced), rolled back;
        # the next job's outcome.
        self.assertEqual(["in transaction", "COMMIT", "alone"], sent[:3])
        self.assertEqual(["ROLLBACK", "alone"], sent[-2:])
        self.assertEqual([(S.RUNNING, 2), (S.COMPLETED, 1)],
                         self.rows([taken, other]))
        self.assertIn("attempt 1 was fenced", self.logger.getLogBuffer())

    def test_with_prepared_statements_off_it_goes_in_a_transaction(self):
        self.warm_up()
        self.patch(prepared, "_settings", {"enabled": False})
        jobs = self.make_jobs(2)
        sent = self.sent()
        self.assertEqual(2, runner(self.logger).runAll())
        self.assertEqual(["in transaction", "COMMIT"]
                         + ["in transaction", "COMMIT"] * 2, sent[:])
        self.assertEqual([(S.COMPLETED, 1)] * 2, self.rows(jobs))

    def test_in_a_batch_each_outcome_carries_the_next_jobs_start(self):
        self.warm_up_batch()
        jobs = self.make_jobs(3)
        sent = self.sent()
        self.assertEqual(3, runner(self.logger, batch_size=3).runAll())
        # The claim and the first start, committed; each outcome with the
        # next start (the last with the next claim, which finds none).
        self.assertEqual(["in transaction", "in transaction", "COMMIT",
                          "alone", "alone", "alone"], sent[:])
        self.assertEqual([(S.COMPLETED, 1)] * 3, self.rows(jobs))

    def test_a_start_undone_with_a_refused_outcome_is_recorded_again(self):
        # The first job's outcome is refused (it was taken over while it
        # ran, and it sent SQL: its transaction is rolled back, with the
        # start of the next job recorded in it): the next job's start is
        # recorded again before it runs.
        self.warm_up_batch()
        taken, other = self.make_jobs(2, sql="SELECT 1")
        self.taken_over_while_running(taken)
        self.assertEqual(2, runner(self.logger, batch_size=2).runAll())
        self.assertEqual([(S.RUNNING, 2), (S.COMPLETED, 1)],
                         self.rows([taken, other]))
        self.assertIsNotNone(other.job.date_started)
