"""``SELECT ... FOR UPDATE [SKIP LOCKED]`` for Storm, which has no lock API.

PostgreSQL only: SQLite has no row locks (its transactions take the
database's single write lock instead).
"""

__all__ = ["LockingSelect"]

from storm.databases.postgres import compile as postgres_compile
from storm.expr import Select, compile_select


class LockingSelect(Select):
    """A `Select` with a locking clause appended.

    :param lock: the clause, e.g. ``"FOR UPDATE SKIP LOCKED"``.
    """

    __slots__ = ("lock",)

    def __init__(self, *args, lock="FOR UPDATE SKIP LOCKED", **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = lock


@postgres_compile.when(LockingSelect)
def compile_locking_select(compile, select, state):
    return "%s %s" % (compile_select(compile, select, state), select.lock)


# Precedence is looked up by exact class: parenthesise it as a Select.
postgres_compile.set_precedence(
    postgres_compile.get_precedence(Select), LockingSelect)
