"""What each database can do, as named capabilities.

Code that behaves differently on PostgreSQL and SQLite asks the store's
`Dialect` for the capability it needs (``dialect(store).row_locks``),
never compares database names: the reason for each difference is then
written where it is decided, once.
"""

__all__ = ["Dialect", "POSTGRESQL", "SQLITE", "dialect"]

from dataclasses import dataclass

from storm.databases.postgres import Postgres


@dataclass(frozen=True)
class Dialect:
    """One database's capabilities.

    :ivar name: ``"postgresql"`` or ``"sqlite"``: the suffix of
        dialect-specific migration files and of test names.
    :ivar row_locks: ``SELECT ... FOR UPDATE [SKIP LOCKED]``: concurrent
        claimers take disjoint rows without waiting, and a transaction can
        hold a job row against every other runner. Without it (SQLite) a
        transaction's write lock excludes every other writer instead.
    :ivar concurrent_writes: another connection can write while a job's
        transaction is open (progress reports and lease heartbeats go
        through a connection of their own). SQLite has one writer at a
        time: the running job.
    :ivar notify: ``LISTEN``/``NOTIFY``: workers wake when a job is
        committed instead of polling.
    :ivar roles: login roles, one per job section (``dbuser``).
    :ivar returning: ``UPDATE ... RETURNING`` (and ``UPDATE ... FROM``).
    :ivar information_schema: the catalog is ``information_schema`` and
        schemas can be made and dropped inside a transaction; otherwise
        it is ``sqlite_master`` and a scratch database is a file.
    :ivar sequences: ids come from a sequence that can hand out many at
        once (``nextval``); otherwise from SQLite's AUTOINCREMENT counter,
        under the write lock.
    :ivar arrays: array parameters (``unnest``): a multi-row INSERT sends
        one parameter a column.
    :ivar row_estimates: the planner estimates how many rows a condition
        matches (``EXPLAIN``), from statistics ANALYZE keeps: a count too
        large to make at every scrape is estimated instead. Without it
        (SQLite, for small databases) counts are exact.
    """

    name: str
    row_locks: bool
    concurrent_writes: bool
    notify: bool
    roles: bool
    returning: bool
    information_schema: bool
    sequences: bool
    arrays: bool
    row_estimates: bool


POSTGRESQL = Dialect(
    name="postgresql", row_locks=True, concurrent_writes=True, notify=True,
    roles=True, returning=True, information_schema=True, sequences=True,
    arrays=True, row_estimates=True)

SQLITE = Dialect(
    name="sqlite", row_locks=False, concurrent_writes=False, notify=False,
    roles=False, returning=False, information_schema=False,
    sequences=False, arrays=False, row_estimates=False)


def dialect(store):
    """Return the `Dialect` of `store`'s database (a Storm store)."""
    if isinstance(store.get_database(), Postgres):
        return POSTGRESQL
    return SQLITE
