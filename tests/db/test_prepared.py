"""The runner's hot statements as prepared statements on PostgreSQL
(`jobs.database.prepared`): prepared once per session, prepared again
after the session is lost, and sent plain when turned off (PgBouncer in
transaction mode)."""

import psycopg2
import transaction
from storm.exceptions import DisconnectionError
from storm.tracer import install_tracer, remove_tracer

from jobs.config import get_config
from jobs.database import IntArray, get_store, prepared
from jobs.database.savepoint import Savepoint
from jobs.database.stormext import BeginWithFirstStatement, dsn_of
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

    def containing(self, text):
        return [s for s in self.statements if text in s]


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
        self.assertNotEqual([], self.recorder.containing("UPDATE job SET"))

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


class TestDirectStatements(DatabaseTestCase):
    """The prepared statements go to psycopg2 past Storm's result and
    tracing layers (`jobs.database.stormext.direct_execute`), with
    Storm's transaction, exception and reconnection behaviour."""

    __test__ = True
    database_kind = "postgresql"

    def setUp(self):
        super().setUp()
        self.addCleanup(prepared.set_enabled, prepared.enabled())
        prepared.set_enabled(True)

    def count_direct(self):
        """How many statements went the direct way (a list of one
        count, updated as they go)."""
        sent = [0]
        real = prepared.direct_execute

        def counting(store, statement, params, alone=False):
            result = real(store, statement, params, alone)
            if result is not None:
                sent[0] += 1
            return result

        self.patch(prepared, "direct_execute", counting)
        return sent

    def select(self, store, ids):
        return prepared.execute(
            store, "SELECT id, status FROM job WHERE id = ANY(?::integer[])"
            " ORDER BY id", [ids])

    def test_a_run_sends_its_statements_directly(self):
        sent = self.count_direct()
        jobs = [self.factory.makeDoFooJob() for _ in range(4)]
        transaction.commit()
        for batch_size, group_commit in ((1, 0), (2, 2)):
            JobRunner(logger=BufferLogger(), source=DoFooJob,
                      settings=RunSettings(batch_size=batch_size,
                                           group_commit=group_commit)
                      ).runAll()
        self.assertEqual([JobStatus.COMPLETED] * 4,
                         [DoFooJob.get(job.job_id).status for job in jobs])
        # Claims and outcomes at least, a few for each job.
        self.assertGreater(sent[0], 4)

    def test_results_read_as_storms_do(self):
        ids = [job.job_id for job in
               [self.factory.makeDoFooJob() for _ in range(3)]]
        transaction.commit()
        store = get_store()
        sent = self.count_direct()
        direct = self.select(store, ids)
        self.assertEqual(1, sent[0])
        recorder = StatementRecorder()
        install_tracer(recorder)
        try:
            through_storm = self.select(store, ids)
        finally:
            remove_tracer(recorder)
        # With a tracer installed, the statement goes through Storm (the
        # tracer sees it).
        self.assertEqual(1, sent[0])
        self.assertEqual(1, len(recorder.starting("EXECUTE ")))
        rows = through_storm.get_all()
        self.assertEqual([(job_id, JobStatus.WAITING.value)
                          for job_id in ids], rows)
        self.assertEqual(rows, direct.get_all())
        self.assertEqual(rows, list(self.select(store, ids)))
        self.assertEqual(rows[0], self.select(store, ids).get_one())
        self.assertIsNone(self.select(store, [-1]).get_one())
        self.assertEqual(3, self.select(store, ids).rowcount)
        update = prepared.execute(
            store, "UPDATE job SET priority = priority WHERE id ="
            " ANY(?::integer[])", [ids])
        self.assertEqual((None, 3), (update.get_all(), update.rowcount))

    def test_the_first_statement_joins_the_transaction(self):
        foo = self.factory.makeFoo()
        transaction.commit()
        store = get_store()
        transaction.commit()  # a new transaction the store has not joined
        sent = self.count_direct()
        prepared.execute(store, "UPDATE foo SET note = ? WHERE id = ?",
                         ["direct", foo.id])
        self.assertEqual(1, sent[0])
        transaction.commit()
        other = psycopg2.connect(dsn_of(store.get_database()))
        self.addCleanup(other.close)
        with other.cursor() as cursor:
            cursor.execute("SELECT note FROM foo WHERE id = %s", (foo.id,))
            self.assertEqual(("direct",), cursor.fetchone())

    def test_pending_savepoints_are_sent_first(self):
        store = get_store()
        self.select(store, [1])  # prepared (through Storm) and sent
        savepoint = Savepoint(store)
        sent = self.count_direct()
        self.select(store, [1])
        self.assertTrue(savepoint.issued)
        self.assertEqual(0, sent[0])  # through Storm, which sends them
        savepoint.release()
        transaction.abort()

    def test_a_run_whose_backend_is_terminated_prepares_again(self):
        # As TestPrepared's test of the same, with no tracer installed:
        # the runner's statements go the direct way before the third job
        # ends its own session, and after the reconnect.
        first = [self.factory.makeDoFooJob().job_id for _ in range(2)]
        killer = self.factory.makeDoFooJob(
            sql="SELECT pg_terminate_backend(pg_backend_pid())").job_id
        rest = [self.factory.makeDoFooJob().job_id for _ in range(2)]
        transaction.commit()
        sent = self.count_direct()
        runner = JobRunner(logger=BufferLogger(), source=DoFooJob,
                           settings=RunSettings(batch_size=5,
                                                group_commit=0))
        error = self.assertRaises(DisconnectionError, runner.runAll)
        before = sent[0]
        self.assertGreater(before, 0)
        transaction.abort()  # Storm reconnects at the next statement
        self.assertEqual(0, get_store().execute(
            "SELECT count(*) FROM pg_prepared_statements").get_one()[0])
        claims.release(get_store(), error.unstarted_claims)
        transaction.commit()
        JobRunner(logger=BufferLogger(), source=DoFooJob,
                  settings=RunSettings(batch_size=1)).runAll()
        self.assertGreater(sent[0], before)
        self.assertEqual(
            [JobStatus.COMPLETED] * 4 + [JobStatus.RUNNING],
            [DoFooJob.get(job_id).status for job_id in first + rest
             + [killer]])
        self.assertNotEqual(0, get_store().execute(
            "SELECT count(*) FROM pg_prepared_statements").get_one()[0])

    def end_session(self, store, *statements):
        """Run `statements` on another connection, then end `store`'s
        database session from there; return its backend's pid."""
        backend = store.execute("SELECT pg_backend_pid()").get_one()[0]
        transaction.commit()
        other = psycopg2.connect(dsn_of(store.get_database()))
        self.addCleanup(other.close)
        other.autocommit = True
        with other.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            cursor.execute("SELECT pg_terminate_backend(%s)", (backend,))
        return backend

    def test_a_statement_sent_alone_on_a_lost_session_reconnects(self):
        # A statement that would commit by itself joins no transaction;
        # when its session is gone it joins after all, so that the abort
        # rolls Storm's connection back and the next statement
        # reconnects.
        job_id = self.factory.makeDoFooJob().job_id
        transaction.commit()
        store = get_store()
        update = "UPDATE job SET priority = 5 WHERE id = ?"
        prepared.execute(store, update, [job_id])  # prepared on the session
        transaction.commit()
        backend = self.end_session(
            store, "UPDATE job SET priority = 0 WHERE id = %d" % job_id)
        alone = []
        real = BeginWithFirstStatement._execute_alone

        def execute_alone(connection, *args):
            alone.append(args[1])
            return real(connection, *args)

        self.patch(BeginWithFirstStatement, "_execute_alone", execute_alone)
        self.assertRaises(DisconnectionError, prepared.execute, store,
                          update, [job_id], alone=True)
        self.assertEqual(1, len(alone))  # sent outside a transaction
        transaction.abort()
        # (On the new session the statement is prepared first, in a
        # transaction, which the statement then joins.)
        self.assertEqual(1, prepared.execute(
            store, update, [job_id], alone=True).rowcount)
        transaction.commit()
        self.assertNotEqual(
            backend, store.execute("SELECT pg_backend_pid()").get_one()[0])
        self.assertEqual([(5,)], store.execute(
            "SELECT priority FROM job WHERE id = ?", (job_id,)).get_all())

    def test_a_lost_session_is_a_disconnection_then_a_new_session(self):
        job_id = self.factory.makeDoFooJob().job_id
        transaction.commit()
        store = get_store()
        self.select(store, [job_id])  # prepared on this session
        transaction.commit()
        backend = self.end_session(store)
        sent = self.count_direct()
        self.assertRaises(DisconnectionError, self.select, store,
                          [job_id])
        transaction.abort()  # Storm reconnects at the next statement
        self.assertEqual([(job_id, JobStatus.WAITING.value)],
                         self.select(store, [job_id]).get_all())
        self.assertEqual(1, sent[0])
        self.assertNotEqual(
            backend, store.execute("SELECT pg_backend_pid()").get_one()[0])
        self.assertEqual(1, store.execute(
            "SELECT count(*) FROM pg_prepared_statements").get_one()[0])


class TestIntArray(DatabaseTestCase):
    """Id lists as one array literal (`IntArray`): what psycopg2 sends,
    and what PostgreSQL reads, through Storm and past it."""

    database_kind = "postgresql"
    __test__ = True

    def test_an_id_list_goes_as_one_literal(self):
        connection = psycopg2.connect(dsn_of(get_store().get_database()))
        self.addCleanup(connection.close)
        self.assertEqual(
            b"SELECT '{3,-1,20}'::integer[]",
            connection.cursor().mogrify("SELECT %s::integer[]",
                                        (IntArray([3, -1, 20]),)))

    def test_postgresql_reads_an_integer_array(self):
        store = get_store()
        for ids in ([3, 1, 2], []):
            # Through Storm's own execute, and as a prepared statement.
            self.assertEqual((ids,), store.execute(
                "SELECT ?::integer[]", [IntArray(ids)]).get_one())
            self.assertEqual((ids,), prepared.execute(
                store, "SELECT ?::integer[]", [IntArray(ids)]).get_one())

    def test_an_element_that_is_not_an_integer_is_refused(self):
        for bad in (["1); DROP TABLE job; --"], [1.5], [None]):
            self.assertRaises(TypeError, get_store().execute,
                              "SELECT ?::integer[]", [IntArray(bad)])
            transaction.abort()
