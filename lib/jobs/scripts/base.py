"""`Script`: the base of every command-line script.

Options ``-v/--verbose``, ``-q/--quiet`` and ``--log-file=LEVEL:FILE``;
log lines ``YYYY-MM-DD HH:MM:SS LEVEL message`` in UTC on stderr; records
at WARNING and above become OOPS reports; ``run()`` returns the exit code
instead of exiting, and ``test_args`` plus an injected ``logger`` let
tests run a script in-process.
"""

__all__ = ["Script", "UsageError"]

import argparse
import logging
import os
import sys

from jobs.errors import UsageError
from jobs.scripts.lock import LockFile
from jobs.scripts.logger import OopsHandler, configure_logging, level_from_options

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_LOCKED = 1


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of exiting with code 2."""

    def error(self, message):
        raise UsageError(message)


def _log_file(value):
    level_name, sep, path = value.partition(":")
    if not sep:
        level_name, path = "INFO", value
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise argparse.ArgumentTypeError("unknown log level %r" % level_name)
    try:
        open(path, "a").close()
    except OSError as e:
        raise argparse.ArgumentTypeError(
            "cannot append to %s: %s" % (path, e.strerror))
    return level, path


class Script:
    """A command-line script.

    Subclasses set `description`, add options in `add_my_options`, and
    implement `main`, which returns an exit code (None means 0).

    :param name: the script's name (lock files, OOPS reporter); default
        the class name in lower case.
    :param test_args: the argument list to parse instead of ``sys.argv``.
    :param logger: a logger to use instead of configuring the root one.
    """

    description = None
    usage = None
    epilog = None
    # The name its usage and help show; None: the program's file name
    # (the script's `name` in tests).
    prog = None

    def __init__(self, name=None, test_args=None, logger=None):
        self.name = name or type(self).__name__.lower()
        self.parser = _Parser(
            prog=self.prog or (os.path.basename(sys.argv[0])
                               if test_args is None else self.name),
            usage=self.usage,
            description=self.description or type(self).__doc__,
            epilog=self.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        self.parser.add_argument(
            "-v", "--verbose", action="count", default=0,
            help="Log more (repeatable).")
        self.parser.add_argument(
            "-q", "--quiet", action="count", default=0,
            help="Log less (repeatable).")
        self.parser.add_argument(
            "--log-file", metavar="LEVEL:FILE", type=_log_file,
            action="append", default=[],
            help="Also log records of LEVEL and above to FILE (appended).")
        self.add_my_options()
        self.usage_error = None
        try:
            self.options = self.parser.parse_args(test_args)
        except UsageError as e:
            self.usage_error = str(e)
            self.options = None
        self._injected_logger = logger
        self._handlers = []

    @property
    def logger(self):
        """The script's logger: the injected one, or ``logging.getLogger(name)``.

        Assigning one (as tests do) injects it: the root logger is then
        left alone.
        """
        return self._injected_logger or logging.getLogger(self.name)

    @logger.setter
    def logger(self, logger):
        self._injected_logger = logger

    def add_my_options(self):
        """Add the script's own options to ``self.parser``."""

    def main(self):
        """Do the script's work; return the exit code (None for 0)."""
        raise NotImplementedError

    def make_error_reporter(self):
        """Return the `ErrorReporter` for WARNING+ records, or None."""
        return None

    def make_redactor(self):
        """Return a function hiding the secrets of a log line, or None."""
        return None

    def _setup_logging(self):
        if self._injected_logger is not None:
            return
        level = level_from_options(self.options.verbose, self.options.quiet)
        self._handlers = configure_logging(level, self.options.log_file,
                                           redact=self.make_redactor())
        reporter = self.make_error_reporter()
        if reporter is not None:
            handler = OopsHandler(reporter, self.name)
            logging.getLogger().addHandler(handler)
            self._handlers.append(handler)

    def _teardown_logging(self):
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        self._handlers = []

    def _usage(self):
        print("%s: error: %s" % (self.parser.prog, self.usage_error),
              file=sys.stderr)
        return EXIT_USAGE

    def run(self):
        """Run `main` with logging set up; return the exit code.

        A usage error gives 2 and one line on stderr. An unexpected exception is logged (and so
        reported as an OOPS) and gives 1; KeyboardInterrupt and
        SystemExit propagate.
        """
        return self._run(self.main)

    def _run(self, body):
        if self.usage_error is not None:
            return self._usage()
        self._setup_logging()
        try:
            code = body()
        except UsageError as e:
            self.usage_error = str(e)
            return self._usage()
        except Exception:
            self.logger.exception("Unhandled exception in %s", self.name)
            return 1
        finally:
            self._teardown_logging()
        return EXIT_OK if code is None else code

    def lock_path(self, lock_dir, suffix=None):
        """Return the lock file path for this script (and `suffix`)."""
        name = self.name if suffix is None else "%s-%s" % (self.name, suffix)
        return os.path.join(lock_dir, "jobs-%s.lock" % name)

    def lock(self, path):
        """Return a held `LockFile` for `path`, or None when in use."""
        lock = LockFile(path, self.logger)
        return lock if lock.acquire() else None

    def lock_and_run(self):
        """Run `main` under the script's lock; return the exit code.

        1 when the lock is held elsewhere. Subclasses whose locks are
        finer (one per job section) override it.
        """
        return self._run(self._locked_main)

    def _locked_main(self):
        path = self.lock_path(self.default_lock_dir())
        try:
            lock = self.lock(path)
        except OSError as e:
            self.logger.error("Cannot take the lock file %s: %s", path,
                              e.strerror or e)
            return EXIT_USAGE
        if lock is None:
            return EXIT_LOCKED
        try:
            return self.main()
        finally:
            lock.release()

    def default_lock_dir(self):
        """The folder of this script's lock file."""
        return os.environ.get("JOBS_LOCK_DIR", "/var/lock")
