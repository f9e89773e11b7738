"""Storm connections and databases of PostgreSQL and SQLite as a runner
needs them: Storm's per-call wrapper costs removed, ``BEGIN`` sent with a
transaction's first statement, savepoints sent on demand, the session
settings of the configuration, SQLite's ``BEGIN IMMEDIATE``. Part of
`jobs.database.stormext`, the one package that uses Storm's private API.
"""

__all__ = [
    "BeginWithFirstStatement", "JobsPostgres", "JobsPostgresConnection",
    "JobsSQLite", "KEEPALIVES", "SESSION_SETTINGS",
]

from functools import partial, partialmethod

from storm.database import ConnectionWrapper, CursorWrapper, register_scheme
from storm.databases.postgres import Postgres, PostgresConnection
from storm.databases.sqlite import SQLite, SQLiteConnection
from storm.exceptions import wrap_exceptions

def _call_wrapped(database, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except Exception:
        # Storm's conversion into its own exception types, unchanged.
        with wrap_exceptions(database):
            raise


def _wrapped_attribute(database, target, name):
    attr = getattr(target, name)
    if callable(attr):
        return partial(_call_wrapped, database, attr)
    return attr


class QuickCursorWrapper(CursorWrapper):
    """Storm's cursor wrapper without its per-call price.

    Storm wraps every method it fetches from a cursor in a new closure
    passed through ``functools.wraps`` and a generator-based context
    manager: per statement, more than a short job's own work.
    The same exceptions come out of this one.
    """

    def __getattr__(self, name):
        return _wrapped_attribute(self._database, self._cursor, name)


class QuickConnectionWrapper(ConnectionWrapper):
    """Storm's connection wrapper without its per-call price."""

    def __getattr__(self, name):
        return _wrapped_attribute(self._database, self._connection, name)

    def cursor(self):
        return QuickCursorWrapper(
            _call_wrapped(self._database, self._connection.cursor),
            self._database)


class BeginWithFirstStatement(QuickConnectionWrapper):
    """A psycopg2 connection whose transactions send ``BEGIN`` with their
    first statement, in its round trip (psycopg2's own takes a round
    trip: one in five of a job committed on its own, issue 15). psycopg2
    runs in autocommit mode; this sends BEGIN, COMMIT and ROLLBACK."""

    def __init__(self, connection, database):
        super().__init__(connection, database)
        self.__dict__["in_transaction"] = False

    def cursor(self):
        cursor = QuickCursorWrapper(
            _call_wrapped(self._database, self._connection.cursor),
            self._database)
        cursor.__dict__["execute"] = partial(self._execute, cursor._cursor)
        return cursor

    def _execute(self, cursor, statement, params=None):
        if not self.__dict__["in_transaction"]:
            # Whatever happens next, a COMMIT or ROLLBACK ends it.
            self.__dict__["in_transaction"] = True
            statement = "BEGIN; " + statement
        return _call_wrapped(self._database, cursor.execute, statement,
                             params)

    def _execute_alone(self, cursor, statement, params=None):
        """Send `statement` with no BEGIN: outside a transaction,
        PostgreSQL commits it by itself."""
        return _call_wrapped(self._database, cursor.execute, statement,
                             params)

    def _end(self, statement):
        if self.__dict__["in_transaction"]:
            self.__dict__["in_transaction"] = False
            with self._connection.cursor() as cursor:
                _call_wrapped(self._database, cursor.execute, statement)

    commit = partialmethod(_end, "COMMIT")
    rollback = partialmethod(_end, "ROLLBACK")


# Statements that end a transaction when sent as SQL (ROLLBACK TO
# SAVEPOINT does not).
_ENDING = ("COMMIT", "END", "ROLLBACK", "ABORT")


class SavepointsOnDemand:
    """A Storm connection that sends pending savepoints just before the
    next statement: a job that executes no SQL costs no round trip.

    `pending_savepoints` holds objects with a ``name`` and an ``issued``
    flag (`jobs.database.savepoint.Savepoint`). It also counts the
    transaction ends (`ends`, the last in `last_end`), however they come
    — the transaction package, ``store.commit()``, SQL — so that a runner
    can tell that a job's code ended the transaction it was given.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending_savepoints = []
        self.ends = 0
        self.last_end = None

    def raw_execute(self, statement, params=None, *args, **kwargs):
        if self.pending_savepoints:
            pending, self.pending_savepoints = self.pending_savepoints, []
            for savepoint in pending:
                super().raw_execute("SAVEPOINT %s" % savepoint.name)
                savepoint.issued = True
        if statement[:8].lstrip().upper().startswith(_ENDING) and not \
                statement.lstrip().upper().startswith("ROLLBACK TO"):
            self._ended(statement.split()[0].upper() + " (as SQL)")
        return super().raw_execute(statement, params, *args, **kwargs)

    def _ended(self, how):
        self.ends += 1
        self.last_end = how

    def commit(self, *args, **kwargs):
        self.pending_savepoints = []
        self._ended("a commit")
        return super().commit(*args, **kwargs)

    def rollback(self, *args, **kwargs):
        self.pending_savepoints = []
        self._ended("a rollback")
        if self._closed:
            # Closed (by a job's code): there is nothing left to roll back;
            # Storm would fail on the missing raw connection.
            return None
        return super().rollback(*args, **kwargs)


class JobsPostgresConnection(SavepointsOnDemand, PostgresConnection):
    """A PostgreSQL connection with savepoints on demand."""


# Session settings of every new PostgreSQL connection ({setting: seconds
# or None, or the text of a setting that is not a duration}), from the
# configuration (`jobs.database.store.connect`).
SESSION_SETTINGS = {}

# TCP keepalives: a peer gone without a word (a cut cable, a dead host) is
# noticed within a minute and a half instead of the kernel's two hours.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30",
              "keepalives_interval": "10", "keepalives_count": "6"}


class JobsPostgres(Postgres):
    """PostgreSQL, READ COMMITTED, in UTC, with TCP keepalives and the
    session settings of `SESSION_SETTINGS`.

    :ivar autocommit: each statement commits by itself (`jobs.heartbeat.autocommit_twin`).
    """

    connection_factory = JobsPostgresConnection
    autocommit = False

    def __init__(self, uri):
        uri = uri.copy()
        uri.options.setdefault("isolation", "read-committed")
        for key, value in KEEPALIVES.items():
            uri.options.setdefault(key, value)
        super().__init__(uri)

    def _raw_connect(self):
        raw_connection = QuickConnectionWrapper(
            super()._raw_connect()._connection, self)
        cursor = raw_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        for setting, seconds in SESSION_SETTINGS.items():
            if isinstance(seconds, str):  # not a duration: jit = off
                cursor.execute("SET %s = %s" % (setting, seconds))
                continue
            cursor.execute("SET %s = %d" % (
                setting, 0 if seconds is None else max(1, seconds * 1000)))
        cursor.execute(
            "SELECT pid, extract(epoch FROM backend_start) FROM"
            " pg_stat_activity WHERE pid = pg_backend_pid()")
        row = cursor.fetchone()
        cursor.close()
        # Who this session is, for the claims it makes (`session_of`).
        raw_connection.__dict__["session"] = (
            "%d/%.6f" % row if row else "")
        # A SET inside a transaction that is later rolled back is undone.
        raw_connection.commit()
        raw_connection._connection.autocommit = True
        if self.autocommit:
            return raw_connection
        begins = BeginWithFirstStatement(raw_connection._connection, self)
        begins.__dict__["session"] = raw_connection.__dict__["session"]
        return begins


class ImmediateSQLiteConnection(SQLiteConnection):
    """A SQLite connection whose transactions start BEGIN IMMEDIATE."""

    def raw_execute(self, statement, params=None, _end=False):
        if not _end and not self._in_transaction:
            # Take the write lock up front (waiting up to the timeout):
            # a deferred transaction that read first could never write
            # once another connection had committed in between.
            self._raw_connection.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
        # The parent's BEGIN is skipped since we are in a transaction now.
        return super().raw_execute(statement, params, _end)


class JobsSQLiteConnection(SavepointsOnDemand, ImmediateSQLiteConnection):
    """BEGIN IMMEDIATE transactions, with savepoints on demand."""

    def raw_execute(self, statement, params=None, _end=False):
        if _end:
            # COMMIT or ROLLBACK (from commit() or rollback(), which count
            # it) ends the savepoints; none is sent first.
            self.pending_savepoints = []
            return ImmediateSQLiteConnection.raw_execute(
                self, statement, params, _end)
        result = super().raw_execute(statement, params)
        if not self._raw_connection.in_transaction:
            # COMMIT or ROLLBACK sent as SQL: Storm must know, or it would
            # go on without BEGIN (autocommit) or roll back nothing.
            self._in_transaction = False
        return result


class JobsSQLite(SQLite):
    """SQLite in WAL mode with foreign keys on and a generous lock wait."""

    connection_factory = JobsSQLiteConnection

    def __init__(self, uri):
        uri = uri.copy()
        uri.options.setdefault("timeout", "30")
        uri.options.setdefault("journal_mode", "WAL")
        uri.options.setdefault("foreign_keys", "ON")
        super().__init__(uri)


register_scheme("jobs-postgres", JobsPostgres)
register_scheme("jobs-sqlite", JobsSQLite)

