"""What job code may not do to the runner: keep a look-out.

A job runs inside the transaction the runner gave it, and must leave that
transaction to the runner: the runner commits the job's work together with
its outcome (and, in a group, with the outcomes of the jobs before it).
`TransactionGuard` notices a job that committed, rolled back or closed it
— by ``transaction.commit()``, ``store.commit()``, ``COMMIT`` sent as SQL,
``store.close()``... — so that the runner fails that job with an OOPS
naming what it did, and charges no other job for it.

`job_raised` tells an exception raised by job code from a real Ctrl-C.
"""

__all__ = ["TransactionGuard", "guard_open", "job_raised"]

import signal

from jobs.database.stormext import transaction_ends


class TransactionGuard:
    """Watches `store`'s connection while a job runs (made just before)."""

    __slots__ = ("store", "before")

    def __init__(self, store):
        self.store = store
        self.before = transaction_ends(store)

    def intact(self):
        """True while the job has left its transaction alone."""
        return transaction_ends(self.store) == self.before

    def misuse(self):
        """None, or ``(committed, what it did)`` when the job ended its
        transaction (`committed`: the last end was a commit) or closed the
        store."""
        now = transaction_ends(self.store)
        if now == self.before:
            return None
        if now is None:
            return False, "it closed the store (store.close())"
        count, how = now
        committed = how.startswith(("a commit", "COMMIT", "END"))
        return committed, "%d time(s) since it started, last by %s" % (
            count - self.before[0], how)


def guard_open(store):
    """False once `store`'s connection was closed (by job code)."""
    return transaction_ends(store) is not None


def job_raised(error):
    """Whether `error`, which job code raised, is the job's.

    Every exception is, `SystemExit` and `GeneratorExit` included — but
    a `KeyboardInterrupt` while SIGINT has Python's default handler may
    be a real Ctrl-C at an interactive prompt, which must stop the
    runner. Runners started by a script handle SIGINT themselves
    (`jobs.stopping.GracefulStop`): there it is the job's too.
    """
    return not (isinstance(error, KeyboardInterrupt)
                and signal.getsignal(signal.SIGINT)
                is signal.default_int_handler)
