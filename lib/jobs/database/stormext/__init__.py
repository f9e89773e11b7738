"""The one package that reaches into Storm's private API.

Storm has no public API for what a fast, correct runner needs: sending
statements it compiled once, dropping objects from its cache, undoing the
object state of a partial rollback, sending SAVEPOINTs lazily, starting
SQLite transactions ``BEGIN IMMEDIATE``, and its per-call wrapper costs.
Everything that depends on Storm's internals is here (`.connections`:
the connection and database classes; `.access`: what is read and
changed inside stores and objects), so that a Storm release that changes
them breaks one package, and
``tests/unit/test_stormext.py`` says so loudly (it checks every private
name used below against the installed Storm).
"""

__all__ = [
    "BeginWithFirstStatement", "DirectResult", "IntArray", "JobsPostgres",
    "JobsPostgresConnection", "JobsSQLite", "PRIVATE_NAMES",
    "SESSION_SETTINGS", "compile_expr", "connection_of", "database_values",
    "direct_execute", "discard_object_changes", "dsn_of", "flush_pending",
    "forget_dead_objects", "forget_object", "invalidate", "load_object",
    "raw_session_state", "reload_columns", "result_class", "session_of",
    "socket_fileno", "transaction_ends",
]

from jobs.database.stormext.access import (
    DirectResult, IntArray, compile_expr, connection_of, database_values,
    direct_execute, discard_object_changes, dsn_of, flush_pending,
    forget_dead_objects, forget_object, invalidate, load_object,
    raw_session_state, reload_columns, result_class, session_of,
    socket_fileno, transaction_ends)
from jobs.database.stormext.connections import (
    SESSION_SETTINGS, BeginWithFirstStatement, JobsPostgres,
    JobsPostgresConnection, JobsSQLite)

# (owner, attribute) of every private name this package relies on; its
# test checks each one exists in the installed Storm.
PRIVATE_NAMES = (
    ("storm.store.Store", "_connection"),
    ("storm.store.Store", "_cache"),
    ("storm.store.Store", "_alive"),
    ("storm.store.Store", "_dirty"),
    ("storm.store.Store", "_load_object"),
    ("storm.database.Connection", "compile"),
    ("storm.database.Connection", "_raw_connection"),
    ("storm.database.Connection", "_closed"),
    ("storm.database.Connection", "_ensure_connected"),
    ("storm.databases.sqlite.SQLiteConnection", "_in_transaction"),
    ("storm.databases.postgres.Postgres", "_dsn"),
    ("storm.databases.postgres.Postgres", "_raw_connect"),
    ("storm.database.ConnectionWrapper", "_connection"),
    ("storm.database.ConnectionWrapper", "_database"),
    ("storm.database.CursorWrapper", "_cursor"),
    ("storm.database.Connection", "_state"),
    ("storm.database.Connection", "_blocked"),
    ("storm.database.Connection", "_event"),
    ("storm.database.Connection", "_check_disconnect"),
    ("storm.store.Store", "_implicit_flush_block_count"),
    ("storm.tracer", "_tracers"),
)
