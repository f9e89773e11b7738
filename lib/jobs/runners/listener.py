"""`Listener`: wait for PostgreSQL NOTIFY on the jobs_ready channel.

A trigger on ``job`` sends ``NOTIFY jobs_ready`` whenever a job becomes
WAITING; PostgreSQL delivers it when that transaction commits. The
listener has its own autocommit connection (LISTEN must not sit inside the
store's transactions) and waits with select(), together with a wake-up
pipe so that a signal ends the wait at once.
"""

__all__ = ["CHANNEL", "Listener"]

import select
import time

import psycopg2
import psycopg2.extensions

CHANNEL = "jobs_ready"


class Listener:
    """LISTENs on `CHANNEL` through its own connection.

    :param dsn: a libpq connection string.
    :param wakeup_fd: a file descriptor whose readability also ends a
        wait (the read end of a signal wake-up pipe), or None.
    """

    def __init__(self, dsn, wakeup_fd=None):
        self.connection = psycopg2.connect(dsn)
        self.connection.set_isolation_level(
            psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        self.wakeup_fd = wakeup_fd
        with self.connection.cursor() as cursor:
            cursor.execute("LISTEN %s" % CHANNEL)

    def check(self, timeout=2.0):
        """Send a NOTIFY to ourselves; True if it arrives within `timeout`.

        It does not behind a transaction-pooling proxy (PgBouncer in
        transaction mode), where the worker must poll.
        """
        self.drain()
        with self.connection.cursor() as cursor:
            cursor.execute("NOTIFY %s, 'self-check'" % CHANNEL)
        deadline = time.monotonic() + timeout
        while True:
            # Our own NOTIFY usually comes back with the NOTIFY command's
            # reply, already read: look before waiting on the socket.
            self.connection.poll()
            payloads = [n.payload for n in self.connection.notifies]
            self.connection.notifies.clear()
            if "self-check" in payloads:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([self.connection], [], [], left)

    def drain(self):
        """Forget notifications received so far; return how many."""
        self.connection.poll()
        count = len(self.connection.notifies)
        self.connection.notifies.clear()
        return count

    def wait(self, timeout):
        """Wait up to `timeout` seconds for a notification (or a wake-up).

        A lost connection ends the wait (the worker then reconnects).

        :return: True if a notification arrived.
        """
        try:
            if self.drain():
                return True
        except psycopg2.Error:
            self.connection.close()
            return False
        readers = [self.connection]
        if self.wakeup_fd is not None:
            readers.append(self.wakeup_fd)
        ready, _, _ = select.select(readers, [], [], timeout)
        if self.connection not in ready:
            return False
        try:
            return bool(self.drain())
        except psycopg2.Error:
            self.connection.close()
            return False

    @property
    def closed(self):
        """True when the connection was closed or lost."""
        return bool(self.connection.closed)

    def close(self):
        """Close the connection."""
        self.connection.close()
