"""The database: stores, dialects, the database clock, column types.

- `jobs.database.store`: the ``main`` store per role and thread
  (`connect`, `get_store`, `set_role`);
- `jobs.database.dialect`: what each database can do (`dialect(store)`);
- `jobs.database.clock`: "now" by the database's clock (`UTCNow`), and
  the frozen clock of tests;
- `jobs.database.columns`: `UTCDateTime`, `DBEnum`, `JSON`;
- `jobs.database.savepoint`: savepoints sent only when needed;
- `jobs.database.stormext`: the one package that uses Storm's private API.

The names below are the package's public API.
"""

from jobs.database.clock import UTCNow, clock, database_now
from jobs.database.columns import JSON, DBEnum, UTCDateTime
from jobs.database.dialect import POSTGRESQL, SQLITE, Dialect, dialect
from jobs.database.savepoint import Savepoint
from jobs.database.store import (
    collect_garbage,
    connect,
    disconnect,
    dsn,
    freeze_long_lived,
    get_store,
    get_zstorm,
    like_escape,
    quote_identifier,
    role_uri,
    set_role,
    statement_timeout,
    storm_uri,
    uri_without_password,
)
from jobs.database.stormext import IntArray, forget_dead_objects

__all__ = [
    "DBEnum",
    "Dialect",
    "IntArray",
    "JSON",
    "POSTGRESQL",
    "SQLITE",
    "Savepoint",
    "UTCDateTime",
    "UTCNow",
    "clock",
    "collect_garbage",
    "connect",
    "database_now",
    "dialect",
    "disconnect",
    "dsn",
    "freeze_long_lived",
    "forget_dead_objects",
    "get_store",
    "get_zstorm",
    "like_escape",
    "quote_identifier",
    "role_uri",
    "set_role",
    "statement_timeout",
    "storm_uri",
    "uri_without_password",
]
