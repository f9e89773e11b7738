"""An flock(2) lock file: one holder at a time per path, released by the
kernel when the holder dies (no stale lock after kill -9)."""

__all__ = ["LockFile"]

import fcntl
import os


class LockFile:
    """A non-blocking exclusive lock on `path`.

    :param path: the lock file; its folder is created when needed.
    :param logger: where ``Creating lockfile:`` / ``in use`` are logged.
    """

    def __init__(self, path, logger):
        self.path = path
        self.logger = logger
        self._fd = None

    def acquire(self):
        """Take the lock; return False (logged at INFO) when it is held.

        :raises OSError: when the lock file cannot be created.
        """
        self.logger.info("Creating lockfile: %s", self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.logger.info("Lockfile %s in use", self.path)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._fd = fd
        return True

    def release(self):
        """Drop the lock (the file stays, empty of meaning)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
