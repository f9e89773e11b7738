"""Loggers for tests and embedding: one that drops, one that keeps."""

__all__ = ["BufferLogger", "DevNullLogger", "LOG_FORMAT", "emits"]

import io
import logging

# The script format without the time stamp ("INFO    Ran 1 DoFooJob jobs.").
LOG_FORMAT = "%(levelname)-7s %(message)s"


def emits(logger, level, ignore=()):
    """Whether a record of `level` logged to `logger` reaches a handler
    that would emit it, besides the handlers in `ignore`: the runner asks
    before it builds a per-job line, since its log tail lowers the root
    logger's level while a batch runs (so that job code's lines reach
    the tail) and would otherwise make every such line be built for
    nothing. Handlers' filters are not consulted (a filtered handler
    counts as emitting)."""
    if logger.disabled or not logger.isEnabledFor(level):
        return False
    found = False
    current = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if handler not in ignore and level >= handler.level:
                return True
        if not current.propagate:
            break
        current = current.parent
    # No handler at all: logging's last resort (WARNING) writes it.
    return not found and level >= logging.lastResort.level


class DevNullLogger(logging.Logger):
    """A logger that discards every record."""

    def __init__(self, name="devnull"):
        super().__init__(name, logging.DEBUG)
        self.propagate = False
        self.addHandler(logging.NullHandler())
        # Not even a record is made (benchmarks run thousands of jobs).
        self.disabled = True


class BufferLogger(logging.Logger):
    """A logger that keeps every record (DEBUG and up) as formatted text."""

    def __init__(self, name="buffer"):
        super().__init__(name, logging.DEBUG)
        self.propagate = False
        self._buffer = io.StringIO()
        handler = logging.StreamHandler(self._buffer)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        self.addHandler(handler)

    def getLogBuffer(self):
        """Return everything logged so far, one record a line."""
        return self._buffer.getvalue()

    def clearLogBuffer(self):
        """Forget everything logged so far."""
        self._buffer.seek(0)
        self._buffer.truncate()
