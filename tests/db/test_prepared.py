"""The runner's hot statements as prepared statements on PostgreSQL
(`jobs.database.prepared`): prepared once per session, prepared again
after the session is lost, and sent plain when turned off (PgBouncer in
transaction mode)."""

import transaction
from storm.exceptions import DisconnectionError
from storm.tracer import install_tracer, remove_tracer

from jobs.config import get_config
from jobs.database import get_store, prepared
from jobs.interfaces.job import JobStatus
from jobs.log import BufferLogger
from jobs.model import claims
from jobs.runner import JobRunner
from jobs.sections import RunSettings
from jobs.testing.fixtures import ConfigFixture
from jobs.testing.foojob import DoFooJob
from jobs.testing.testcase import DatabaseTestCase


class StatementRecorder:
    """The statements sent, as the tracer sees them."""

    def __init__(self):
        self.statements = []

    def connection_raw_execute(self, connection, raw_cursor, statement,
                               params):
        self.statements.append(statement)

    def starting(self, word):
        return [s for s in self.statements if s.startswith(word)]


class TestPrepared(DatabaseTestCase):
    """PostgreSQL only: SQLite has no prepared statements to keep."""

    __test__ = True
    database_kind = "postgresql"

    def setUp(self):
        super().setUp()
        self.logger = BufferLogger()
        self.recorder = StatementRecorder()
        install_tracer(self.recorder)
        self.addCleanup(remove_tracer, self.recorder)
        self.addCleanup(prepared.set_enabled, prepared.enabled())

    def run_jobs(self, batch_size=1, group_commit=0):
        return JobRunner(logger=self.logger, source=DoFooJob,
                         settings=RunSettings(batch_size=batch_size,
                                              group_commit=group_commit)
                         ).runAll()

    def make_jobs(self, count, **behaviour):
        jobs = [self.factory.makeDoFooJob(**behaviour) for _ in range(count)]
        transaction.commit()
        return [job.job_id for job in jobs]

    def session_prepared(self):
        """Names of the current session's prepared statements."""
        return {row[0] for row in get_store().execute(
            "SELECT name FROM pg_prepared_statements")}

    def statuses(self, job_ids):
        return [DoFooJob.get(job_id).status for job_id in job_ids]

    def test_each_statement_is_prepared_once_per_session(self):
        for batch_size, group_commit in ((1, 0), (10, 10)):
            job_ids = self.make_jobs(6)
            self.run_jobs(batch_size, group_commit)
            self.assertEqual([JobStatus.COMPLETED] * 6,
                             self.statuses(job_ids))
        executed = self.recorder.starting("EXECUTE ")
        names = {statement.split()[1].split("(")[0]
                 for statement in executed}
        # The claim and the outcome at least, run more often than prepared.
        self.assertIn("UPDATE job SET claimed_by",
                      " ".join(prepared.sql_of(s) for s in executed))
        self.assertGreater(len(executed), len(names))
        self.assertTrue(names <= self.session_prepared())
        # A second run on the same session prepares nothing.
        job_ids = self.make_jobs(3)
        del self.recorder.statements[:]
        self.run_jobs()
        self.assertEqual([JobStatus.COMPLETED] * 3, self.statuses(job_ids))
        self.assertEqual([], self.recorder.starting("PREPARE "))
        self.assertNotEqual([], self.recorder.starting("EXECUTE "))

    def test_statements_are_prepared_again_after_the_backend_is_terminated(
            self):
        # The third job ends its own session mid-run: the runner loses
        # the connection with two claims unstarted; once reconnected they
        # are given back and run on the new session, which prepares the
        # statements again (EXECUTE of a statement the new session never
        # prepared would fail).
        first = self.make_jobs(2)
        killer = self.make_jobs(1, sql="SELECT pg_terminate_backend("
                                "pg_backend_pid())")
        rest = self.make_jobs(2)
        old_backend = get_store().execute(
            "SELECT pg_backend_pid()").get_one()[0]
        transaction.commit()
        runner = JobRunner(logger=self.logger, source=DoFooJob,
                           settings=RunSettings(batch_size=5,
                                                group_commit=0))
        error = self.assertRaises(DisconnectionError, runner.runAll)
        transaction.abort()  # Storm reconnects at the next statement
        self.assertEqual([JobStatus.COMPLETED] * 2, self.statuses(first))
        new_backend = get_store().execute(
            "SELECT pg_backend_pid()").get_one()[0]
        self.assertNotEqual(old_backend, new_backend)
        self.assertEqual(set(), self.session_prepared())
        claims.release(get_store(), error.unstarted_claims)
        transaction.commit()
        del self.recorder.statements[:]
        self.run_jobs()
        self.assertEqual([JobStatus.COMPLETED] * 4,
                         self.statuses(first + rest))
        # The killed attempt waits for its lease to run again.
        self.assertEqual([JobStatus.RUNNING], self.statuses(killer))
        self.assertNotEqual([], self.recorder.starting("PREPARE "))
        names = {statement.split()[1].split("(")[0]
                 for statement in self.recorder.starting("EXECUTE ")}
        self.assertTrue(names)
        self.assertTrue(names <= self.session_prepared())

    def test_turned_off_sends_plain_statements(self):
        prepared.set_enabled(False)
        for batch_size, group_commit in ((1, 0), (10, 10)):
            job_ids = self.make_jobs(4)
            self.run_jobs(batch_size, group_commit)
            self.assertEqual([JobStatus.COMPLETED] * 4,
                             self.statuses(job_ids))
        self.assertEqual([], self.recorder.starting("PREPARE "))
        self.assertEqual([], self.recorder.starting("EXECUTE "))
        self.assertNotEqual([], self.recorder.starting("UPDATE job SET"))

    def test_the_configuration_turns_them_off(self):
        self.assertTrue(get_config().prepared_statements)
        self.assertFalse(self.useFixture(ConfigFixture(
            "[database]\nprepared_statements: false\n")
        ).config.prepared_statements)


class TestBeginWithFirstStatement(DatabaseTestCase):
    """psycopg2's BEGIN rides on the transaction's first statement
    (`jobs.database.stormext.BeginWithFirstStatement`): one round trip
    less a transaction, the same transactions."""

    __test__ = True
    database_kind = "postgresql"

    def raw(self):
        store = get_store()
        store.execute("SELECT 1")
        return store._connection._raw_connection._connection

    def test_the_first_statement_opens_the_transaction(self):
        import psycopg2.extensions as ext
        raw = self.raw()
        transaction.abort()
        self.assertEqual(ext.TRANSACTION_STATUS_IDLE,
                         raw.info.transaction_status)
        # psycopg2 itself sends nothing before the statement ...
        self.assertTrue(raw.autocommit)
        get_store().execute("SELECT 1")
        # ... which left the session in a transaction.
        self.assertEqual(ext.TRANSACTION_STATUS_INTRANS,
                         raw.info.transaction_status)
        transaction.commit()
        self.assertEqual(ext.TRANSACTION_STATUS_IDLE,
                         raw.info.transaction_status)

    def test_abort_undoes_and_commit_keeps(self):
        foo = self.factory.makeFoo()
        transaction.commit()
        get_store().execute("UPDATE foo SET note = 'rolled back' WHERE id = ?",
                            (foo.id,))
        transaction.abort()
        self.assertIsNone(get_store().execute(
            "SELECT note FROM foo WHERE id = ?", (foo.id,)).get_one()[0])
        get_store().execute("UPDATE foo SET note = 'kept' WHERE id = ?",
                            (foo.id,))
        transaction.commit()
        transaction.abort()
        self.assertEqual("kept", get_store().execute(
            "SELECT note FROM foo WHERE id = ?", (foo.id,)).get_one()[0])
