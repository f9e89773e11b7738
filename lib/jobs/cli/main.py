"""The `jobs` command: operate a jobs database and its OOPS reports.

    jobs [--config NAME|FILE] [--format table|json] COMMAND ...

Commands: ``run``, ``db upgrade``, ``db verify``, ``db roles``,
``status``, ``list``, ``show``, ``retry``, ``cancel``, ``suspend``,
``resume``, ``prune``, ``explain``, ``schedules``, ``workers``, ``oops
list``, ``oops show``, ``oops summary``, ``oops reindex``, ``oops prune``,
``web``, ``celery-worker``. A bad id, date or status is a one-line error
and exit status 2, never a traceback; a closed pipe (``jobs list | head``)
ends the command quietly, with status 141.
"""

__all__ = ["console", "main"]

import argparse
import os
import sys

import transaction
from storm.exceptions import DatabaseError as StormDatabaseError

from jobs.cli import (
    actions, db, explain, jobs, oops, run, schedules, web, workers)
from jobs.config import get_config, load, set_config
from jobs.database import connect
from jobs.errors import CommandError, JobsError
from jobs.registration import register_components
from jobs.stopping import exit_process

EXIT_ERROR = 2
# What a program killed by SIGPIPE exits with (128 + 13).
EXIT_BROKEN_PIPE = 141
# Commands whose statements have no command_statement_timeout.
UNBOUNDED = ("celery-worker", "db")
# Options of `jobs` itself that take a value (before the command).
VALUE_OPTIONS = ("--config", "--format")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandError(message)


def build_parser():
    parser = _Parser(prog="jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="config instance or file "
                        "(default: $JOBS_CONFIG or development)")
    parser.add_argument("--format", choices=("table", "json"),
                        default="table", help="listing format")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_Parser)
    for module in (run, db, jobs, actions, explain, schedules, workers, oops,
                   web):
        module.add_commands(commands, _Parser)
    return parser


def split_run(argv):
    """``(jobs' own arguments, run_jobs.py's arguments)`` when `argv` is
    a ``run`` command, else ``(argv, None)``: argparse cannot hand a
    sub-command every option it does not know."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in VALUE_OPTIONS:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            if word == "run":
                return argv[:index + 1], argv[index + 1:]
            break
    return argv, None


def main(argv=None):
    """Run the `jobs` command; return its exit status."""
    if argv is None:
        argv = sys.argv[1:]
    own, run_argv = split_run(list(argv))
    try:
        options = build_parser().parse_args(own)
        if options.config:
            set_config(load(options.config))
        if run_argv is not None:
            return run.run_jobs(run_argv)
        config = get_config()
        register_components(config)
        # A Celery worker runs jobs: its connections are the runners'. A
        # migration may build an index for longer than any query should.
        connect(config.database_uri, None if options.command in UNBOUNDED
                else config.command_session_settings)
        code = options.run(options)
        transaction.abort()
        return code or 0
    except (CommandError, JobsError) as e:
        transaction.abort()
        print("jobs: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    except StormDatabaseError as e:
        transaction.abort()
        print("jobs: database error: %s" % " ".join(str(e).split()),
              file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as e:  # --help
        return e.code or 0
    except BrokenPipeError:
        # `jobs list | head`: the reader has gone; so do we, quietly.
        transaction.abort()
        return _broken_pipe()


def _broken_pipe():
    """Point stdout at /dev/null (so that the interpreter's last flush
    cannot fail again) and return SIGPIPE's exit status."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def console():
    """The ``jobs`` console script: `main`, then exit even if job code run
    by ``jobs run`` left threads behind (`jobs.stopping.exit_process`)."""
    exit_process(main())
