"""`Savepoint`: a SAVEPOINT that costs nothing unless the job runs SQL."""

__all__ = ["Savepoint"]

import itertools

from jobs.database.stormext import connection_of, discard_object_changes

_names = itertools.count(1)


class Savepoint:
    """A SAVEPOINT in `store`'s transaction, with Storm's cache kept honest.

    The SAVEPOINT statement is sent with the transaction's next statement
    (see `jobs.database.stormext.SavepointsOnDemand`): if nothing is
    executed before `release` or `rollback`, the savepoint costs no round
    trip at all. Rolling back to it forgets the object changes made since
    (as ``Store.rollback`` does for a whole transaction) and invalidates
    the cache, so no object shows a value the database no longer has.
    """

    __slots__ = ("store", "number", "issued", "ended", "_on")

    def __init__(self, store):
        self.store = store
        self.number = next(_names)
        self.issued = False
        self.ended = False
        self._on = connection_of(store)
        self._on.pending_savepoints.append(self)

    @property
    def name(self):
        """The SAVEPOINT's name (made when it is sent: most never are)."""
        return "jobs_sp_%d" % self.number

    def _drop_pending(self):
        """Forget this savepoint (and any opened after it) if not sent."""
        pending = self._on.pending_savepoints
        if pending and pending[-1] is self:
            pending.pop()  # the usual case: the last one opened
        elif self in pending:
            del pending[pending.index(self):]

    def release(self):
        """Keep what was done since the savepoint (once; later calls and
        calls after `rollback` do nothing)."""
        if self.ended:
            return
        self.ended = True
        if self.issued:
            self._on.execute("RELEASE SAVEPOINT %s" % self.name)
            return
        pending = self._on.pending_savepoints
        if pending and pending[-1] is self:
            pending.pop()  # the usual case (`_drop_pending`'s, inline)
        else:
            self._drop_pending()

    def rollback(self):
        """Undo what was done since the savepoint, in the database and in
        the store's objects; the transaction goes on. Does nothing once
        the savepoint was released or rolled back."""
        if self.ended:
            return
        self.ended = True
        discard_object_changes(self.store)
        self._drop_pending()
        if self.issued:
            self._on.execute(
                "ROLLBACK TO SAVEPOINT %s" % self.name)
            self._on.execute("RELEASE SAVEPOINT %s" % self.name)
