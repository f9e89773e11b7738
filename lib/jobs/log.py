"""Loggers for tests and embedding (one that drops, one that keeps), and
the runner's cheap per-job line."""

__all__ = ["BufferLogger", "DevNullLogger", "LOG_FORMAT", "RepeatedLine",
           "emits"]

import io
import logging
import os
import threading
import time

# The script format without the time stamp ("INFO    Ran 1 DoFooJob jobs.").
LOG_FORMAT = "%(levelname)-7s %(message)s"


def emits(logger, level, ignore=()):
    """Whether a record of `level` logged to `logger` reaches a handler
    that would emit it, besides the handlers in `ignore`: the runner asks
    before it builds a per-job line, since its log tail lowers the root
    logger's level while a batch runs (so that job code's lines reach
    the tail) and would otherwise make every such line be built for
    nothing. Handlers' filters are not consulted (a filtered handler
    counts as emitting). A logger that is not a `logging.Logger` (a
    `logging.LoggerAdapter`, say) emits what it is enabled for."""
    if not isinstance(logger, logging.Logger):
        return logger.isEnabledFor(level)
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


# This process's id, kept up to date in a forked child: a system call a
# job less than asking each time.
_pid = os.getpid()


def _forked():
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class RepeatedLine:
    """One log call site that a runner passes once a job (``Running …``),
    its records made for a fraction of what ``logger.info`` costs.

    The first record is made as logging makes it (the caller found on
    the stack, the record factory's fields); later ones copy it and set
    only what changes: the message's arguments and the time. They go
    through ``logger.handle``, so filters and handlers see an ordinary
    record. A new first record is made when the thread or process
    differs, or a record factory other than logging's own is set (its
    fields may change from record to record); a logger whose class makes
    its own records (``makeRecord``) makes every one. Measured (issue 15): a
    worker's per-job INFO line cost about 50 µs in a group of no-op
    jobs; ``LogRecord`` and finding the caller were a third of it.

    The caller checks whether the level is enabled (`emits`). A logger
    that is not a `logging.Logger` (a `logging.LoggerAdapter`, say), or
    makes its own records, is called as it is, ``logger.log(level, msg,
    *args)``.
    """

    def __init__(self, logger, level, msg):
        self.logger = logger
        self.level = level
        self.msg = msg
        self._first = None  # (thread, pid, the first record's attributes)
        self._plain = (isinstance(logger, logging.Logger) and
                       type(logger).makeRecord is logging.Logger.makeRecord)

    def __call__(self, *args):
        if not self._plain:
            self.logger.log(self.level, self.msg, *args)
            return
        first = self._first
        thread = threading.get_ident()
        if (first is None or first[0] != thread
                or first[1] != _pid
                or logging.getLogRecordFactory() is not logging.LogRecord):
            path, line, function, _ = self.logger.findCaller(stacklevel=2)
            record = self.logger.makeRecord(
                self.logger.name, self.level, path, line, self.msg, args,
                None, function)
            self._first = (thread, _pid, dict(record.__dict__))
        else:
            attributes = first[2]
            record = logging.LogRecord.__new__(logging.LogRecord)
            record.__dict__.update(attributes)
            record.args = args
            now = time.time()
            record.created = now
            record.msecs = int((now - int(now)) * 1000) + 0.0
            record.relativeCreated = attributes["relativeCreated"] + (
                now - attributes["created"]) * 1000
        self.logger.handle(record)


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
