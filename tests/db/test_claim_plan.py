"""The claim's plan with many jobs scheduled for later (issue 14 item 6):
it reads the ready jobs through indexes, never walking past the jobs that
are not due. A structural test (the rows PostgreSQL reads), not a timed
one: benchmarks/scale.py times it at a million jobs."""

import json

import transaction
from storm.tracer import install_tracer, remove_tracer_type

from jobs.database import prepared
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job, first_ready
from jobs.model.limits import SCAN, Limits
from jobs.testing.foojob import DoFooJob
from jobs.testing.testcase import DatabaseTestCase

FUTURE = 5000
READY = 30


class ClaimStatement:
    """A Storm tracer keeping the last claim statement and its
    parameters."""

    statement = parameters = sent = None

    def connection_raw_execute(self, connection, raw_cursor, statement,
                               params):
        # A prepared claim is seen as its EXECUTE: the SQL it stands for;
        # the plain claim's UPDATE, or a limited claim's WITH ... UPDATE.
        sent = statement
        statement = prepared.sql_of(statement)
        if "UPDATE job SET" in statement and (
                "SKIP LOCKED" in statement or statement.startswith("WITH ")):
            self.statement = statement
            self.sent = sent  # the EXECUTE, when prepared
            self.parameters = [
                param.get(to_db=True) if hasattr(param, "get") else param
                for param in params]


def rows_read(plan):
    """The rows every node of an EXPLAIN ANALYZE plan produced or
    filtered out, summed."""
    total = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    total += plan.get("Rows Removed by Filter", 0)
    return total + sum(rows_read(child) for child in plan.get("Plans", []))


class TestClaimPlan(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def load(self, future, ready):
        """`future` DoFooJob jobs scheduled a day ahead (created first, so
        an index in id order meets them first), then `ready` ready ones."""
        foo = self.factory.makeFoo()
        transaction.commit()
        for count, start in ((future, "(CURRENT_TIMESTAMP AT TIME ZONE"
                                      " 'UTC') + interval '1 day'"),
                             (ready, "NULL")):
            self.store.execute(
                "INSERT INTO job (status, scheduled_start, kind) SELECT 0, %s,"
                " ? FROM generate_series(1, ?)" % start,
                (DoFooJob.job_kind(), count))
            self.store.execute(
                "INSERT INTO foo_job (job, foo, job_type, json_data) SELECT"
                " id, ?, ?, '{}' FROM job WHERE id NOT IN (SELECT job FROM"
                " foo_job)", (foo.id, DoFooJob.class_job_type.value))
        transaction.commit()
        self.store.execute("ANALYZE job")
        self.store.execute("ANALYZE foo_job")
        transaction.commit()

    def claim_plan(self, limit, limits=None):
        tracer = ClaimStatement()
        install_tracer(tracer)
        self.addCleanup(remove_tracer_type, ClaimStatement)
        claimed = DoFooJob.claimReady(limit, limits=limits)
        transaction.abort()
        [plan] = self.store.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + tracer.statement.replace(
                "%s", "?"), tracer.parameters).get_one()[0]
        transaction.abort()
        return claimed, plan["Plan"]

    def test_a_claim_does_not_walk_past_jobs_scheduled_for_later(self):
        self.load(FUTURE, READY)
        claimed, plan = self.claim_plan(1)
        self.assertEqual(1, len(claimed))
        # Before: the waiting jobs' (priority, id) index was walked past
        # every job scheduled for tomorrow (5,000 rows filtered out).
        self.assertLess(rows_read(plan), 10 * READY, json.dumps(plan))

    def test_the_prepared_claims_generic_plan_reads_through_the_indexes(
            self):
        # The prepared claim's generic plan (the one PostgreSQL settles on
        # after five runs) must not walk past the jobs scheduled for later
        # either: with the statuses as parameters it could not use the
        # partial indexes and read every waiting job.
        self.load(FUTURE, READY)
        tracer = ClaimStatement()
        install_tracer(tracer)
        self.addCleanup(remove_tracer_type, ClaimStatement)
        self.assertEqual(1, len(DoFooJob.claimReady(1)))
        transaction.abort()
        self.assertTrue(tracer.sent.startswith("EXECUTE "), tracer.sent)
        self.store.execute("SET plan_cache_mode = force_generic_plan")
        self.addCleanup(self.store.execute, "RESET plan_cache_mode")
        [plan] = self.store.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + tracer.sent.replace(
                "%s", "?"), tracer.parameters).get_one()[0]
        transaction.abort()
        self.assertLess(rows_read(plan["Plan"]), 10 * READY,
                        json.dumps(plan))

    def test_the_prepared_claim_is_not_planned_at_every_run(self):
        # Planning the claim cost more than running it (0.6 ms of a 1.1
        # ms claim): after its first runs PostgreSQL must find its
        # generic plan as good as the custom ones, and keep it.
        self.load(FUTURE, FUTURE)
        for _ in range(READY):
            self.assertEqual(1, len(DoFooJob.claimReady(1)))
            transaction.commit()
        [(generic, custom)] = self.store.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%SKIP LOCKED%'").get_all()
        transaction.abort()
        self.assertGreater(generic, custom)

    def test_a_limited_claim_reads_a_scan_not_every_ready_job(self):
        # A section with limits (jobs.model.limits) reads at most SCAN
        # candidates; with one condition over every kind of ready job,
        # PostgreSQL joined all of them with their context rows to sort
        # them (0.9 s a claim at a million ready jobs).
        many = 20 * SCAN
        self.load(FUTURE, many)
        claimed, plan = self.claim_plan(
            1, Limits("do_foo", max_running=10, max_running_per_key=2))
        self.assertEqual(1, len(claimed))
        self.assertLess(rows_read(plan), many, json.dumps(plan))

    def test_due_jobs_are_claimed_in_priority_order(self):
        self.load(0, 0)
        late = self.factory.makeDoFooJob(priority=1, delay=0.001)
        now = self.factory.makeDoFooJob(priority=0)
        urgent = self.factory.makeDoFooJob(priority=5)
        transaction.commit()
        self.store.execute(
            "UPDATE job SET scheduled_start = scheduled_start - interval"
            " '1 minute' WHERE id = ?", (late.job_id,))
        transaction.commit()
        claimed = DoFooJob.claimReady(3)
        self.assertEqual([urgent.job_id, late.job_id, now.job_id],
                         [job.job_id for job in claimed])
        transaction.commit()
        self.assertEqual({JobStatus.RUNNING.value}, {
            status for status, in self.store.execute(
                "SELECT status FROM job").get_all()})

    def test_ready_ids_read_a_limit_not_every_ready_job(self):
        # What iterReady runs (the cron's one-by-one mode): the same
        # parts as the claim; before, 1M ready jobs were joined with
        # their context rows and sorted (0.8-1.4 s).
        many = 20 * SCAN
        self.load(FUTURE, many)
        condition, tables = DoFooJob.jobCondition()
        sql, parameters = first_ready(
            self.store, (Job.id, Job.priority), condition, tables, 100)
        [plan] = self.store.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, parameters).get_one()[0]
        transaction.abort()
        self.assertLess(rows_read(plan["Plan"]), many, json.dumps(plan))
        self.assertEqual(100, len(DoFooJob.readyJobIds(100)))

    def test_ready_ids_in_priority_order_across_kinds(self):
        self.load(0, 0)
        late = self.factory.makeDoFooJob(priority=1, delay=0.001)
        now = self.factory.makeDoFooJob(priority=0)
        lost = self.factory.makeDoFooJob(priority=3)
        later = self.factory.makeDoFooJob(priority=9, delay=3600)
        transaction.commit()
        self.store.execute(
            "UPDATE job SET scheduled_start = scheduled_start - interval"
            " '1 minute' WHERE id = ?", (late.job_id,))
        # A RUNNING job whose lease expired: an orphan, ready to take over.
        self.store.execute(
            "UPDATE job SET status = 1, lease_expires = (CURRENT_TIMESTAMP"
            " AT TIME ZONE 'UTC') - interval '1 minute' WHERE id = ?",
            (lost.job_id,))
        transaction.commit()
        self.assertEqual([lost.job_id, late.job_id, now.job_id],
                         DoFooJob.readyJobIds(10))
        self.assertEqual([lost.job_id, late.job_id],
                         DoFooJob.readyJobIds(2))
        self.assertNotIn(later.job_id, DoFooJob.readyJobIds())
