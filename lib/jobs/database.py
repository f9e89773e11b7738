"""Stores, transaction integration, dialect differences and "now".

The framework talks to one named ZStorm store, ``main``, joined to the
`transaction` package: ``transaction.commit()`` / ``abort()`` end it.

PostgreSQL connections run READ COMMITTED (Storm's default REPEATABLE READ
turns every contended claim into a serialization failure) in the UTC time
zone. SQLite, the embedded default, runs in WAL mode with foreign keys on
and every transaction started ``BEGIN IMMEDIATE``: one writer at a time,
never a stale read snapshot that would make a later write fail.

Time: every comparison with "now" that decides who may run a job (leases,
schedules) is made in SQL against the database's clock (`UTCNow`), so
runners on hosts with skewed clocks agree. Tests freeze that clock with
`clock.freeze()`, which turns `UTCNow` into a bound parameter.
"""

__all__ = [
    "DBEnum",
    "JSON",
    "UTCDateTime",
    "UTCNow",
    "clock",
    "connect",
    "database_now",
    "dialect",
    "disconnect",
    "get_store",
    "role_uri",
    "set_role",
    "uri_without_password",
]

import gc
import os
import threading
from datetime import datetime, timedelta, timezone
from functools import partial

from storm.database import ConnectionWrapper, CursorWrapper, register_scheme
from storm.databases.postgres import JSON, Postgres, PostgresConnection
from storm.databases.postgres import compile as postgres_compile
from storm.databases.sqlite import SQLite, SQLiteConnection
from storm.databases.sqlite import compile as sqlite_compile
from storm.exceptions import DatabaseError as StormDatabaseError
from storm.exceptions import wrap_exceptions
from storm.expr import Expr, Select
from storm.properties import SimpleProperty
from storm.uri import URI
from storm.variables import DateTimeVariable, FloatVariable, Variable
from storm.zope.interfaces import IZStorm
from storm.zope.zstorm import ZStorm
from zope.component import getGlobalSiteManager, queryUtility

from jobs.errors import DatabaseError

UTC = timezone.utc
STORE_NAME = "main"
# The name of a role's store: "main as <role>".
ROLE_STORE_PREFIX = STORE_NAME + " as "

# The database role this thread runs as (PostgreSQL; None: the login
# role of the configured URI). Each role has a store of its own, connected
# as that role, so job code cannot ``RESET ROLE`` its way to more.
_session = threading.local()
# {(URI, role): (store name, role's URI)}
_role_stores = {}


class SavepointsOnDemand:
    """A Storm connection that sends pending `Savepoint` s just before the
    next statement: a job that executes no SQL costs no round trip."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending_savepoints = []

    def raw_execute(self, statement, params=None, *args, **kwargs):
        if self.pending_savepoints:
            pending, self.pending_savepoints = self.pending_savepoints, []
            for savepoint in pending:
                super().raw_execute("SAVEPOINT %s" % savepoint.name)
                savepoint.issued = True
        return super().raw_execute(statement, params, *args, **kwargs)

    def commit(self, *args, **kwargs):
        self.pending_savepoints = []
        return super().commit(*args, **kwargs)

    def rollback(self, *args, **kwargs):
        self.pending_savepoints = []
        return super().rollback(*args, **kwargs)


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
    manager: some 40 us a statement, more than a short job's own work.
    The same exceptions come out of this one.
    """

    def __getattr__(self, name):
        return _wrapped_attribute(self._database, self._cursor, name)


class QuickConnectionWrapper(ConnectionWrapper):
    """Storm's connection wrapper without its per-call price (as
    `QuickCursorWrapper`)."""

    def __getattr__(self, name):
        return _wrapped_attribute(self._database, self._connection, name)

    def cursor(self):
        return QuickCursorWrapper(
            _call_wrapped(self._database, self._connection.cursor),
            self._database)


class JobsPostgresConnection(SavepointsOnDemand, PostgresConnection):
    """A PostgreSQL connection with savepoints on demand."""


class JobsPostgres(Postgres):
    """PostgreSQL, READ COMMITTED, in UTC."""

    connection_factory = JobsPostgresConnection

    def __init__(self, uri):
        uri = uri.copy()
        uri.options.setdefault("isolation", "read-committed")
        super().__init__(uri)

    def _raw_connect(self):
        raw_connection = QuickConnectionWrapper(
            super()._raw_connect()._connection, self)
        cursor = raw_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.close()
        # A SET inside a transaction that is later rolled back is undone.
        raw_connection.commit()
        return raw_connection


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
            # COMMIT or ROLLBACK ends the savepoints; none is sent first.
            self.pending_savepoints = []
            return ImmediateSQLiteConnection.raw_execute(
                self, statement, params, _end)
        return super().raw_execute(statement, params)


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

_SCHEMES = {
    "postgres": "jobs-postgres",
    "postgresql": "jobs-postgres",
    "sqlite": "jobs-sqlite",
}


def quote_identifier(name):
    """Quote `name` as a PostgreSQL identifier."""
    return '"%s"' % name.replace('"', '""')


def storm_uri(uri):
    """Translate a user's ``postgres:``/``sqlite:`` URI into ours.

    :raises DatabaseError: for any other scheme.
    """
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme not in _SCHEMES:
        raise DatabaseError(
            "Unsupported database URI %r: use postgres://... or "
            "sqlite:/path/to/file.db" % (uri,))
    return "%s:%s" % (_SCHEMES[scheme], rest)


def get_zstorm():
    """Return the registered `IZStorm` utility, registering one if needed."""
    zstorm = queryUtility(IZStorm)
    if zstorm is None:
        zstorm = ZStorm()
        getGlobalSiteManager().registerUtility(zstorm, IZStorm)
    return zstorm


def connect(uri):
    """Make `uri` the database of the ``main`` store.

    Closes this thread's ``main`` store if it pointed elsewhere.

    :param uri: ``postgres://user@host:port/db`` or ``sqlite:/path.db``.
    :raises DatabaseError: for an unsupported URI.
    """
    zstorm = get_zstorm()
    translated = storm_uri(uri)
    if zstorm.get_default_uris().get(STORE_NAME) == translated:
        return
    disconnect()
    parsed = URI(translated)
    if parsed.scheme == "jobs-sqlite" and parsed.database:
        # The embedded default must work on a fresh checkout.
        folder = os.path.dirname(os.path.abspath(parsed.database))
        os.makedirs(folder, exist_ok=True)
    zstorm.set_default_uri(STORE_NAME, translated)


def disconnect():
    """Abort the transaction and close this thread's ``main`` store."""
    import transaction
    transaction.abort()
    _session.role = None
    zstorm = queryUtility(IZStorm)
    if zstorm is None:
        return
    for name, store in list(zstorm.iterstores()):
        if name == STORE_NAME or name.startswith(ROLE_STORE_PREFIX):
            zstorm.remove(store)
            store.close()


def get_store():
    """Return this thread's ``main`` store, joined to the transaction:
    connected as the role `set_role` chose, if any.

    :raises DatabaseError: when `connect` was never called, or the
        database cannot be reached as that role.
    """
    zstorm = get_zstorm()
    uris = zstorm.get_default_uris()
    if STORE_NAME not in uris:
        raise DatabaseError(
            "No database configured: call jobs.database.connect(uri) or "
            "jobs.config.setup().")
    name = STORE_NAME
    role = getattr(_session, "role", None)
    if role is not None:
        # The runner's hot path: no URI parsing per call.
        key = (uris[STORE_NAME], role)
        named = _role_stores.get(key)
        if named is None:
            named = _role_stores[key] = (
                ROLE_STORE_PREFIX + role, role_uri(uris[STORE_NAME], role))
        name, uri = named
        if uris.get(name) != uri:
            zstorm.set_default_uri(name, uri)
    try:
        return zstorm.get(name)
    except StormDatabaseError as e:
        # libpq's messages span lines; an operator's log wants one.
        raise DatabaseError("Cannot connect to the database %s: %s" % (
            uri_without_password(zstorm.get_default_uris()[name]),
            " ".join(str(e).split()))) from None


def role_uri(uri, role):
    """`uri` (a store URI) logging in as `role`, without the login role's
    password: the role's own comes from libpq (``~/.pgpass``,
    ``PGPASSFILE``, or a ``passfile`` option in the URI)."""
    parsed = URI(uri)
    parsed.username = role
    parsed.password = None
    return str(parsed)


def uri_without_password(uri):
    """`uri` fit for a log line: its password, if any, as <redacted>."""
    parsed = URI(uri)
    if parsed.password:
        parsed.password = "<redacted>"
    return str(parsed).replace("jobs-", "", 1)


def dsn(store):
    """The libpq connection string of `store`'s PostgreSQL database."""
    return store.get_database()._dsn


def dialect(store):
    """Return ``"postgresql"`` or ``"sqlite"`` for `store`'s database."""
    if isinstance(store.get_database(), Postgres):
        return "postgresql"
    return "sqlite"


def set_role(role):
    """Make `get_store` in this thread return a store connected as the
    PostgreSQL `role` (None: the login role of the URI given to
    `connect`), and return it.

    Each role's store is opened once per thread and kept; switching
    neither commits nor aborts. On SQLite roles do not exist: the one
    store is returned.

    :raises DatabaseError: when the database cannot be reached as `role`
        (it does not exist, may not log in, or the server is down) —
        with the previous role still in force.
    """
    previous = getattr(_session, "role", None)
    uri = get_zstorm().get_default_uris().get(STORE_NAME, "")
    _session.role = role if uri.startswith("jobs-postgres:") else None
    try:
        return get_store()
    except DatabaseError:
        _session.role = previous
        raise


class Clock:
    """Where "now" comes from: the database's clock, unless frozen.

    Frozen (tests only), `UTCNow` compiles to the frozen instant as a
    parameter, so that schedules and leases can be moved through time
    without sleeping.
    """

    def __init__(self):
        self.frozen_at = None

    def freeze(self, when=None):
        """Stop the clock at `when` (aware datetime; default: now)."""
        self.frozen_at = when or datetime.now(UTC)

    def advance(self, delta):
        """Move a frozen clock forward by `delta` (timedelta)."""
        self.frozen_at += delta

    def unfreeze(self):
        """Go back to the database's clock."""
        self.frozen_at = None

    def now(self):
        """Return now as an aware UTC datetime (host clock unless frozen)."""
        return self.frozen_at or datetime.now(UTC)


clock = Clock()


class UTCNow(Expr):
    """SQL for the database's current UTC time, plus `offset`.

    :param offset: a `timedelta` or seconds to add (may be negative).
    """

    __slots__ = ("offset",)

    def __init__(self, offset=0):
        if isinstance(offset, timedelta):
            offset = offset.total_seconds()
        self.offset = float(offset)


def _compile_frozen(expr, state):
    state.parameters.append(UTCDateTimeVariable(
        clock.frozen_at + timedelta(seconds=expr.offset)))
    return "?"


@postgres_compile.when(UTCNow)
def compile_utcnow_postgres(compile, expr, state):
    if clock.frozen_at is not None:
        return "CAST(%s AS timestamp)" % _compile_frozen(expr, state)
    sql = "(statement_timestamp() AT TIME ZONE 'UTC')"
    if expr.offset:
        state.parameters.append(FloatVariable(expr.offset))
        sql = "(%s + ? * interval '1 second')" % sql
    return sql


@sqlite_compile.when(UTCNow)
def compile_utcnow_sqlite(compile, expr, state):
    if clock.frozen_at is not None:
        return _compile_frozen(expr, state)
    state.parameters.append(
        Variable(value="%+.6f seconds" % expr.offset))
    return "strftime('%Y-%m-%d %H:%M:%f', 'now', ?)"


def database_now(store):
    """Now by `store`'s database clock (the frozen clock when frozen), as
    an aware UTC datetime: for ages an operator reads or gives, so that
    they agree with the leases and schedules."""
    if clock.frozen_at is not None:
        return clock.frozen_at
    raw = store.execute(Select(UTCNow())).get_one()[0]
    variable = UTCDateTimeVariable()
    variable.set(raw, from_db=True)
    return variable.get()


class UTCDateTimeVariable(DateTimeVariable):
    """Aware UTC datetimes in Python; naive UTC text on the wire.

    Works on both backends: SQLite has no time zones (Storm cannot read
    back an aware value there), and PostgreSQL ``timestamp`` columns hold
    UTC wall time.
    """

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        kwargs["tzinfo"] = UTC
        super().__init__(*args, **kwargs)

    def parse_get(self, value, to_db):
        if to_db and value is not None:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(
                " ", "microseconds")
        return value


class UTCDateTime(SimpleProperty):
    """A Storm property holding an aware UTC datetime (see the variable)."""

    variable_class = UTCDateTimeVariable


class DBEnumVariable(Variable):
    """A lazr.enum `DBItem` in Python, its int value in the database."""

    __slots__ = ("_enum",)

    def __init__(self, *args, **kwargs):
        self._enum = kwargs.pop("enum")
        super().__init__(*args, **kwargs)

    def parse_set(self, value, from_db):
        if from_db:
            try:
                return self._enum.items[value]
            except KeyError:
                raise ValueError("%r is not a value of %s." % (
                    value, self._enum.__name__)) from None
        if getattr(value, "enum", None) is not self._enum:
            raise TypeError(
                "Expected an item of %s, found %r"
                % (self._enum.__name__, value))
        return value

    def parse_get(self, value, to_db):
        if to_db:
            return value.value
        return value


class DBEnum(SimpleProperty):
    """A Storm property for a lazr.enum `DBEnumeratedType` (int column).

    :param enum: the enumerated type.
    """

    variable_class = DBEnumVariable

    def __init__(self, name=None, enum=None, **kwargs):
        kwargs["enum"] = enum
        super().__init__(name, **kwargs)



def collect_garbage():
    """Collect the young generations of Python's garbage.

    Storm's per-object bookkeeping forms reference cycles, and every
    commit revisits each object Storm still tracks, dead or not: runners
    call this every few dozen jobs so that commits stay cheap (measured:
    about 1.7x the jobs per second of a long run).
    """
    gc.collect(1)


def forget_dead_objects(store):
    """Drop from `store` the bookkeeping of objects that no longer exist.

    Storm's map of live objects holds each object's info weakly, but the
    info lives on in reference cycles until the garbage collector runs,
    and every commit resets every column of every info in the map: a
    runner that loads one job at a time would pay for all the dead ones.
    """
    alive = store._alive
    dead = [key for key, obj_info in alive.items()
            if obj_info.get_obj() is None]
    for key in dead:
        del alive[key]


class Savepoint:
    """A SAVEPOINT in `store`'s transaction, with Storm's cache kept honest.

    The SAVEPOINT statement is sent with the transaction's next statement
    (see `SavepointsOnDemand`): if nothing is executed before `release` or
    `rollback`, the savepoint costs no round trip at all. Rolling back to
    it forgets the object changes made since (as ``Store.rollback`` does
    for a whole transaction) and invalidates the cache, so no object shows
    a value the database no longer has.
    """

    _counter = 0

    def __init__(self, store):
        Savepoint._counter += 1
        self.store = store
        self.name = "jobs_sp_%d" % Savepoint._counter
        self.issued = False
        self.ended = False
        self._connection = store._connection
        self._connection.pending_savepoints.append(self)

    def _drop_pending(self):
        """Forget this savepoint (and any opened after it) if not sent."""
        pending = self._connection.pending_savepoints
        if self in pending:
            del pending[pending.index(self):]

    def release(self):
        """Keep what was done since the savepoint (once; later calls and
        calls after `rollback` do nothing)."""
        if self.ended:
            return
        self.ended = True
        self._drop_pending()
        if self.issued:
            self._connection.execute("RELEASE SAVEPOINT %s" % self.name)

    def rollback(self):
        """Undo what was done since the savepoint, in the database and in
        the store's objects; the transaction goes on. Does nothing once
        the savepoint was released or rolled back."""
        if self.ended:
            return
        self.ended = True
        store = self.store
        # Storm has no public API for a partial rollback; this is what
        # Store.rollback() does to its object state.
        for obj_info in store._dirty:
            obj_info.pop("pending", None)
        store._dirty.clear()
        store.invalidate()
        self._drop_pending()
        if self.issued:
            self._connection.execute(
                "ROLLBACK TO SAVEPOINT %s" % self.name)
            self._connection.execute("RELEASE SAVEPOINT %s" % self.name)
