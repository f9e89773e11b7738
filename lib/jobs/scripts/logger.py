"""Script logging: levels from -v/-q, the UTC line format, extra log files,
and WARNING-and-above records turned into OOPS reports.

Every line a script writes is made printable (bytes that are not UTF-8
escaped, NUL escaped) and, when the script says how, has its secrets
redacted: what cron mails and log files keep must not hold passwords.
"""

__all__ = [
    "OopsHandler",
    "configure_logging",
    "formatter",
    "level_from_options",
    "printable",
]

import logging
import time

from jobs.errorlog import NO_OOPS

LINE_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def level_from_options(verbose, quiet):
    """INFO by default; each -v is 10 lower (down to DEBUG), each -q 10 higher."""
    return max(logging.DEBUG, min(logging.CRITICAL,
                                  logging.INFO + 10 * (quiet - verbose)))


def printable(text):
    """`text` made storable anywhere: bytes that are not UTF-8 shown as
    ``\\xNN`` (surrogate-escaped ones as the byte they stand for), NUL as
    ``\\x00`` (PostgreSQL text cannot hold it; the job's outcome, written
    with its log, would fail)."""
    if text.isascii() and "\x00" not in text:
        return text  # printable as it is: a log line's common case
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


class ScriptFormatter(logging.Formatter):
    """The script line format: UTC time stamps, printable text, and
    secrets redacted by `redact` (a function of the text), if given."""

    converter = time.gmtime

    def __init__(self, redact=None):
        super().__init__(LINE_FORMAT, DATE_FORMAT)
        self.redact = redact
        # (second, its time stamp): a worker writes many lines a second,
        # and strftime costs more than the rest of a line.
        self._stamp = (None, None)
        # (second, level name) -> the line's start, for the same reason.
        self._starts = {}

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        cached, stamp = self._stamp
        if cached != second:
            stamp = super().formatTime(record, datefmt)
            self._stamp = (second, stamp)
        return stamp

    def format(self, record):
        if record.exc_info or record.exc_text or record.stack_info:
            text = super().format(record)
        else:
            # `LINE_FORMAT` without the style machinery (a worker writes a
            # line a job): the same attributes set, the same text.
            record.message = record.getMessage()
            record.asctime = self.formatTime(record, self.datefmt)
            key = (int(record.created), record.levelname)
            start = self._starts.get(key)
            if start is None:
                self._starts.clear()  # only this second's are kept
                start = self._starts[key] = LINE_FORMAT % dict(
                    record.__dict__, message="")
            text = start + record.message
        text = printable(text)
        if self.redact is not None:
            text = self.redact(text)
        return text


def formatter(redact=None):
    """The script line format (see `ScriptFormatter`)."""
    return ScriptFormatter(redact)


class OopsHandler(logging.Handler):
    """Files an OOPS report for each WARNING-or-above record.

    :param reporter: an `ErrorReporter`.
    :param script_name: put in the reports' ``req_vars``.
    """

    def __init__(self, reporter, script_name):
        super().__init__(logging.WARNING)
        self.reporter = reporter
        self.script_name = script_name

    def emit(self, record):
        if getattr(record, NO_OOPS, False):
            return
        try:
            req_vars = [("script_name", self.script_name),
                        ("logger", record.name)]
            if record.exc_info:
                self.reporter.raising(record.exc_info, req_vars,
                                      log_message=record.getMessage())
            else:
                self.reporter.message(
                    "LogMessage", record.getMessage(), req_vars,
                    log_level=record.levelname)
        except Exception:
            self.handleError(record)


class _LineEmit:
    """A handler's `emit` of one formatted line: the stream written and
    flushed directly, under the lock its `handle` holds already
    (`StreamHandler.emit` takes it again in its `flush` method, a few µs
    of a worker's line a job at INFO)."""

    def emit(self, record):
        stream = self.stream
        if stream is None:  # a FileHandler closed, to open again
            super().emit(record)
            return
        try:
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class LineStreamHandler(_LineEmit, logging.StreamHandler):
    """A script's stderr handler (see `_LineEmit`)."""


class LineFileHandler(_LineEmit, logging.FileHandler):
    """A script's log-file handler (see `_LineEmit`)."""


def configure_logging(level, log_files, stream=None, redact=None):
    """Send the root logger's records to stderr (and `log_files`).

    :param log_files: [(level, path)] of extra files, appended to.
    :param redact: a function hiding the secrets of a line, or None.
    :return: the handlers added (to remove when done).
    """
    root = logging.getLogger()
    handlers = []
    stderr = LineStreamHandler(stream)
    stderr.setLevel(level)
    handlers.append(stderr)
    for file_level, path in log_files:
        handler = LineFileHandler(path, encoding="utf-8",
                                  errors="backslashreplace")
        handler.setLevel(file_level)
        handlers.append(handler)
    for handler in handlers:
        handler.setFormatter(formatter(redact))
        root.addHandler(handler)
    root.setLevel(min([level] + [lvl for lvl, _ in log_files]))
    return handlers
