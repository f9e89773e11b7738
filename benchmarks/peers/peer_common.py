"""What both peer benchmarks share: result lines, a fresh database, and
the common command-line options."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from importlib.metadata import version

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The local Unix socket, as jobs and pgbench use it (TCP cost the peers up
# to 8%). asyncpg takes the socket's folder as its host too.
DEFAULT_DSN = "dbname=jobs_bench_peers host=/var/run/postgresql"
SINGLE_SAMPLE = 1000  # jobs enqueued one commit each; enough for a stable rate


def emit(system: str, measure: str, jobs: int, seconds: float, **extra) -> None:
    """Print one result as a JSON line."""
    row = {
        "system": system,
        "version": version(system),
        "measure": measure,
        "jobs": jobs,
        **extra,
        "seconds": round(seconds, 4),
        "jobs_per_s": round(jobs / seconds, 1) if seconds > 0 else None,
    }
    print(json.dumps(row), flush=True)


def reset_database(dsn: str) -> None:
    """Drop and recreate the benchmark database through the maintenance DB.

    Only the target database is touched; the server itself is shared with the
    project's own benchmark, so nothing else may be dropped.
    """
    dbname = conninfo_to_dict(dsn).get("dbname")
    if not dbname or dbname == "postgres":
        raise SystemExit(f"refusing to recreate database {dbname!r}")
    admin = make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        # FORCE (PG 13+) ends sessions a previous, interrupted run may have left.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(dbname)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def parser(description: str, enqueue_help: str) -> argparse.ArgumentParser:
    """A parser with the options every peer benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dsn", default=DEFAULT_DSN, help="libpq DSN of the bench DB")
    p.add_argument("--jobs", type=int, default=10000)
    p.add_argument("--enqueue-chunk", type=int, default=1000, help=enqueue_help)
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds before a drain is abandoned")
    p.add_argument("--no-single-sample", action="store_true",
                   help="skip the one-job-per-commit enqueue sample (when"
                   " only the drain is wanted)")
    return p


def run_in_children(target, args: tuple, processes: int,
                    timeout: float) -> tuple[float | None, list]:
    """Run `target(*args, ready)` in `processes` spawned children; time from
    the moment every child has called ``ready.wait()`` until the last one
    has exited.

    spawn, not fork: each child gets its own clean interpreter and event
    loop, as separate worker processes would in production.

    :return: ``(seconds, exit codes)``; seconds is None when a child did
        not start within 60 s, outlived `timeout` (+30 s; it is killed) or
        failed.
    """
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(processes + 1)
    procs = [ctx.Process(target=target, args=args + (ready,))
             for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=60)
    except Exception:
        print("the children did not start within 60s", file=sys.stderr)
        for p in procs:
            p.kill()
        return None, [None] * processes
    start = time.perf_counter()
    deadline = time.monotonic() + timeout + 30
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    seconds = time.perf_counter() - start
    failed = False
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
            failed = True
        elif p.exitcode != 0:
            failed = True
    return (None if failed else seconds), [p.exitcode for p in procs]
