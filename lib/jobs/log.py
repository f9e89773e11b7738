"""Loggers for tests and embedding: one that drops, one that keeps."""

__all__ = ["BufferLogger", "DevNullLogger", "LOG_FORMAT"]

import io
import logging

# The script format without the time stamp ("INFO    Ran 1 DoFooJob jobs.").
LOG_FORMAT = "%(levelname)-7s %(message)s"


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
