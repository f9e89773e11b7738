#!/usr/bin/env python3
"""Run one `jobs` command in-process and print how long its SQL took:
the command as installed (the ``main`` of the ``jobs`` console script's
module),
with a Storm tracer timing each statement from its execute to its
result (the rows included, as psycopg2 fetches them with the execute).

    .venv/bin/python benchmarks/cli_sql.py status
    .venv/bin/python benchmarks/cli_sql.py list --orphaned

The command's own output is discarded. One JSON line on stdout:
``{"argv", "exit", "sql_s", "statements": [[seconds, "SQL..."], ...]}``,
the statements slowest first (their first 200 characters). The
configuration and database are the environment's (``JOBS_CONFIG``,
``JOBS_DATABASE_URI``), as for the command itself.
"""

import contextlib
import io
import json
import sys
import time
from importlib.metadata import entry_points

from storm.tracer import install_tracer


class StatementTimer:
    """A Storm tracer: the wall time of each statement."""

    def __init__(self):
        self.timings = []
        self._started = None

    def connection_raw_execute(self, connection, raw_cursor, statement,
                               params):
        self._started = time.perf_counter()

    def _done(self, statement):
        if self._started is not None:
            self.timings.append((time.perf_counter() - self._started,
                                 " ".join(statement.split())[:200]))
            self._started = None

    def connection_raw_execute_success(self, connection, raw_cursor,
                                       statement, params):
        self._done(statement)

    def connection_raw_execute_error(self, connection, raw_cursor, statement,
                                     params, error):
        self._done(statement)


def main(argv):
    # The console script (`console`) exits the process; the command is
    # its module's `main`.
    command = entry_points(group="console_scripts", name="jobs")
    module = next(iter(command)).module
    main_function = sys.modules.get(module) or __import__(
        module, fromlist=["main"])
    main_function = main_function.main
    timer = StatementTimer()
    install_tracer(timer)
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        try:
            code = main_function(argv)
        except SystemExit as e:
            code = e.code
    timings = sorted(timer.timings, reverse=True)
    print(json.dumps(dict(
        argv=argv, exit=code, sql_s=round(sum(t for t, _ in timings), 4),
        statements=[[round(t, 4), sql] for t, sql in timings])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
