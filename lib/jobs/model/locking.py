"""``SELECT ... FOR NO KEY UPDATE [SKIP LOCKED]`` for Storm, which has no
lock API.

PostgreSQL only: SQLite has no row locks (its transactions take the
database's single write lock instead).

NO KEY UPDATE, the lock an UPDATE of non-key columns takes, rather than
FOR UPDATE: a job whose transaction inserts a row referencing its own
job row (a foreign key) holds a KEY SHARE lock on it, which FOR UPDATE
conflicts with; its heartbeat would then skip renewing its lease, and a
frozen runner's job would never be taken over.
"""

__all__ = ["LockingSelect"]

from storm.databases.postgres import compile as postgres_compile
from storm.expr import Select, compile_select


class LockingSelect(Select):
    """A `Select` with a locking clause appended.

    :param lock: the clause (default ``"FOR NO KEY UPDATE SKIP
        LOCKED"``).
    """

    __slots__ = ("lock",)

    def __init__(self, *args, lock="FOR NO KEY UPDATE SKIP LOCKED",
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = lock


@postgres_compile.when(LockingSelect)
def compile_locking_select(compile, select, state):
    return "%s %s" % (compile_select(compile, select, state), select.lock)


# Precedence is looked up by exact class: parenthesise it as a Select.
postgres_compile.set_precedence(
    postgres_compile.get_precedence(Select), LockingSelect)
