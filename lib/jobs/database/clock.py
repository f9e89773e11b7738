"""Where "now" comes from: the database's clock, unless a test froze it.

Every comparison with "now" that decides who may run a job (leases,
schedules) is made in SQL against the database's clock (`UTCNow`), so
runners on hosts with skewed clocks agree. Tests freeze that clock with
`clock.freeze()`, which turns `UTCNow` into a bound parameter.
"""

__all__ = ["Clock", "UTCNow", "clock", "database_now"]

from datetime import datetime, timedelta, timezone

from storm.databases.postgres import compile as postgres_compile
from storm.databases.sqlite import compile as sqlite_compile
from storm.expr import Expr, Select
from storm.variables import FloatVariable, Variable

from jobs.database.columns import UTCDateTimeVariable

UTC = timezone.utc


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
