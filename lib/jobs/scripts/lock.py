"""An flock(2) lock file: one holder at a time per path, released by the
kernel when the holder dies (no stale lock after kill -9).

The lock file is opened without following a symbolic link
(``O_NOFOLLOW``) and must be a plain file of this user's: a lock file
replaced by a link (to a file the runner may write, which it would
truncate) or by anything else is refused with `UnsafeLockFile`, one line.
"""

__all__ = ["LockFile", "UnsafeLockFile"]

import errno
import fcntl
import os
import stat


class UnsafeLockFile(OSError):
    """The lock path is a symbolic link, not a plain file, or another
    user's file: refused."""


def _open_safely(path):
    """Open (creating) lock file `path`; return its descriptor.

    :raises UnsafeLockFile: see the class.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeLockFile(
                "%s is a symbolic link, not a lock file: refused (remove"
                " it)." % path) from None
        raise
    found = os.fstat(fd)
    why = None
    if not stat.S_ISREG(found.st_mode):
        why = "is not a plain file"
    elif found.st_uid != os.geteuid():
        why = "belongs to another user (uid %d)" % found.st_uid
    if why is not None:
        os.close(fd)
        raise UnsafeLockFile("%s %s: refused as a lock file." % (path, why))
    return fd


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

        :raises OSError: when the lock file cannot be created;
            `UnsafeLockFile` when it is not safe to open.
        """
        self.logger.info("Creating lockfile: %s", self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = _open_safely(self.path)
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
