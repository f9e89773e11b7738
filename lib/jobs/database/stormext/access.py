"""What a runner reads and changes inside Storm's stores, connections
and objects, and the runner's statements sent past Storm's result and
tracing layers (`direct_execute`). Part of `jobs.database.stormext`, the
one package that uses Storm's private API.
"""

from psycopg2.extensions import AsIs, register_adapter
from storm import tracer
from storm.database import STATE_CONNECTED
from storm.expr import State
from storm.info import get_cls_info, get_obj_info
from storm.store import AutoReload

from jobs.database.stormext.connections import (
    BeginWithFirstStatement, JobsPostgresConnection)

__all__ = [
    "DirectResult", "IntArray", "compile_expr", "connection_of",
    "database_values", "direct_execute", "discard_object_changes", "dsn_of",
    "flush_pending", "forget_dead_objects", "forget_object", "invalidate", "load_object",
    "raw_session_state", "reload_columns", "result_class", "session_of",
    "socket_fileno", "transaction_ends",
]


def compile_expr(store, expr):
    """Compile `expr` for `store`'s database: ``(sql, parameters)``, to
    run with ``store.execute(sql, parameters)``. Only for expressions
    whose values do not change between runs (no frozen `UTCNow`)."""
    state = State()
    return store._connection.compile(expr, state), list(state.parameters)


def connection_of(store):
    """`store`'s Storm connection (savepoints are queued on it)."""
    return store._connection


def transaction_ends(store):
    """``(how many times, how last)`` `store`'s connection ended a
    transaction, or None once the connection was closed: compare before
    and after code that must not end it."""
    connection = store._connection
    if connection is None or connection._closed:
        return None
    return connection.ends, connection.last_end


def session_of(store):
    """``"<backend pid>/<backend start>"`` of `store`'s PostgreSQL session
    (connecting if need be), or ``""`` (SQLite)."""
    connection = store._connection
    if connection._raw_connection is None:
        store.execute("SELECT 1")
    return getattr(connection._raw_connection, "__dict__", {}).get(
        "session", "")


def raw_session_state(store):
    """A dict living as long as `store`'s PostgreSQL session (connecting
    if need be; None on SQLite): its prepared statements
    (`jobs.database.prepared`). A reconnect starts a new one."""
    connection = store._connection
    if not isinstance(connection, JobsPostgresConnection):
        return None
    connection._ensure_connected()
    return connection._raw_connection.__dict__.setdefault("jobs_state", {})


class DirectResult:
    """The rows and row count of a statement `direct_execute` sent, read
    as a Storm result is (``get_all``, ``get_one``, iteration,
    ``rowcount``); `committed`: the statement was a transaction of its
    own, committed (`direct_execute`'s `alone`)."""

    __slots__ = ("rows", "rowcount", "committed")

    def __init__(self, rows, rowcount, committed=False):
        self.rows = rows
        self.rowcount = rowcount
        self.committed = committed

    def get_all(self):
        return self.rows

    def get_one(self):
        return self.rows[0] if self.rows else None

    def __iter__(self):
        return iter(self.rows)


class IntArray(list):
    """A list of integers sent to PostgreSQL as one array literal
    (``'{1,2,3}'``; the statement casts it: ``?::integer[]``).

    psycopg2 adapts a plain list element by element: about 0.8 µs an
    integer, 170 µs for the ids of a group of 200 — more than the
    statement takes the server. Each element is formatted as an int:
    anything else raises TypeError, as it should."""

    __slots__ = ()


def _int_array_literal(value):
    return AsIs("'{%s}'" % ",".join(map(_int_text, value)))


_int_text = int.__repr__
register_adapter(IntArray, _int_array_literal)

# Parameter types psycopg2 takes as they are (Storm's conversion leaves
# them alone too).
_AS_THEY_ARE = frozenset((int, str, float, bool, type(None), list, IntArray))


def _psycopg2_values(connection, params):
    """`params` as Storm's ``to_database`` gives them to psycopg2 (its
    generator of type checks only when a parameter needs it)."""
    for param in params:
        if type(param) not in _AS_THEY_ARE:
            return tuple(connection.to_database(params))
    return tuple(params)


def database_values(store, params):
    """`params` (values, Storm variables) as `store`'s connection hands
    them to its database: a list of plain values."""
    return list(_psycopg2_values(store._connection, params))


def direct_execute(store, statement, params, alone=False):
    """``store.execute(statement, params)`` for a statement in psycopg2's
    form (``%s`` marks), sent on the store's PostgreSQL session without
    Storm's result, tracing and parameter passes: a `DirectResult`, the
    rows fetched. The same flush, transaction join, BEGIN, exceptions and
    disconnection handling as Storm's. None (nothing sent) when the
    statement must go through Storm: a tracer is installed (they see
    every statement), savepoints are pending, or the connection is not
    plainly connected.

    :param alone: when no transaction is open on the session (nothing
        sent since the last COMMIT or ROLLBACK, the flush included), send
        the statement without BEGIN: PostgreSQL commits it by itself, in
        its one round trip (the result's ``committed``), and the store
        does not join the transaction for it: the caller's commit has
        nothing of the store's to do.
    """
    connection = store._connection
    if (tracer._tracers or connection.pending_savepoints
            or connection._state != STATE_CONNECTED or connection._blocked
            or connection._closed):
        return None
    raw = connection._raw_connection
    if not isinstance(raw, BeginWithFirstStatement):
        return None
    if store._implicit_flush_block_count == 0:
        flush_pending(store)
    committed = alone and not raw.__dict__["in_transaction"]
    if not committed:
        _join(connection)
    cursor = raw._connection.cursor()
    values = _psycopg2_values(connection, params)
    if committed:
        # psycopg2 is in autocommit mode: the statement commits itself.
        # The store does not join the transaction for it (that commit
        # would have nothing to send: about a tenth of a job committed
        # on its own's client CPU); if it fails, it joins, so that the
        # abort that follows rolls Storm's connection back (and Storm
        # reconnects after a lost connection).
        try:
            connection._check_disconnect(raw._execute_alone, cursor,
                                         statement, values)
        except BaseException:
            _join(connection)
            raise
        # What a commit does to the store's objects (the next statement
        # opens a new transaction).
        invalidate(store)
    else:
        connection._check_disconnect(raw._execute, cursor, statement,
                                     values)
    rows = cursor.fetchall() if cursor.description is not None else None
    result = DirectResult(rows, cursor.rowcount, committed)
    cursor.close()
    return result


def _join(connection):
    """Join the connection's store to the current transaction, as Storm
    does before each statement."""
    if connection._event:
        connection._event.emit("register-transaction")


def socket_fileno(store):
    """The file descriptor of `store`'s PostgreSQL socket (connecting if
    need be): to read its TCP options."""
    store._connection._ensure_connected()
    return store._connection._raw_connection.fileno()


def dsn_of(database):
    """The libpq connection string of a Storm `Postgres` database."""
    return database._dsn


def result_class(store):
    """The class of `store`'s results: its ``set_variable(variable,
    value)`` converts a value read from the database as Storm does."""
    return store._connection.result_factory


def load_object(store, cls, values):
    """The Storm object of `cls` for a row already read (`values`, in the
    order of ``get_cls_info(cls).columns``), without a query, as
    ``store.find`` makes it (or the one alive in the store)."""
    return store._load_object(get_cls_info(cls), result_class(store),
                              values)


def forget_object(store, obj):
    """Drop `obj` from `store`'s strong cache: once nothing else refers
    to it, it dies (a finished job's objects, in a long transaction)."""
    store._cache.remove(get_obj_info(obj))


def flush_pending(store):
    """``store.flush()``, skipped when the store holds no object: it then
    has nothing to write (no new or changed object, no JSON value to look
    at), and Storm's flush would still walk its hooks (a group's job that
    never touched the ORM)."""
    # (The live-object map's own dict: its Python __len__ costs more
    # than the test. A dead entry not yet removed only costs a flush.)
    if store._dirty or store._alive.data:
        store.flush()


def forget_dead_objects(store):
    """Drop from `store` the bookkeeping of objects that no longer exist.

    Storm's map of live objects holds each object's info weakly, but the
    info lives on in reference cycles until the garbage collector runs,
    and every commit resets every column of every info in the map: a
    runner that loads one job at a time would pay for all the dead ones.
    """
    alive = store._alive
    if not alive:
        return
    dead = [key for key, obj_info in alive.items()
            if obj_info.get_obj() is None]
    for key in dead:
        del alive[key]


def invalidate(store):
    """``store.invalidate()``: every object `store` holds reads the
    database again (statements changed rows behind the ORM); nothing to
    do, and nothing done, when it holds none (a runner between jobs:
    Storm's walk of its empty map cost a per-job run 2% of its time)."""
    if store._alive:
        store.invalidate()


def discard_object_changes(store):
    """Forget the unflushed object changes of `store` and make every
    object read the database again: what ``Store.rollback`` does to its
    objects, for a rollback to a savepoint (Storm has no public API for a
    partial rollback)."""
    for obj_info in store._dirty:
        obj_info.pop("pending", None)
    store._dirty.clear()
    store.invalidate()


def reload_columns(obj, columns):
    """Make `columns` of `obj` (changed by an UPDATE) read the database
    again; cheaper than ``store.invalidate(obj)``, which resets all."""
    variables = get_obj_info(obj).variables
    for column in columns:
        variables[column].set(AutoReload)

