"""Throughput of PgQueuer (a peer Postgres job queue) on the local server.

Run with the peers venv (see setup.sh), never with the project's interpreter:

    benchmarks/.venv-peers/bin/python benchmarks/peers/pgqueuer_bench.py \
        --jobs 10000 --batch-sizes 10,100,200 --processes 1

For every batch size the database is dropped and recreated, so each figure
starts from the same empty state. One JSON object per measurement goes to
stdout; anything else (library logs, warnings) goes to stderr.

Consumers always run in child processes, even with --processes 1, so that
one and several consumers are timed the same way: from the moment every
child is connected and ready until the last one has exited.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import timedelta

import asyncpg
from psycopg.conninfo import conninfo_to_dict

from peer_common import (SINGLE_SAMPLE, emit, parser, reset_database,
                         run_in_children)
from pgqueuer import QueueManager, Queries
from pgqueuer.models import Job
from pgqueuer.types import QueueExecutionMode

try:  # pgqueuer recommends uvloop; fall back quietly if it is missing
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

SYSTEM = "pgqueuer"
ENTRYPOINT = "noop"


def arun(coro):
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


def asyncpg_kwargs(dsn: str) -> dict:
    """asyncpg takes no libpq key=value DSN, so translate the common keys."""
    params = conninfo_to_dict(dsn)
    names = {"dbname": "database", "host": "host", "port": "port",
             "user": "user", "password": "password"}
    kwargs = {names[k]: v for k, v in params.items() if k in names}
    if "port" in kwargs:
        kwargs["port"] = int(kwargs["port"])
    return kwargs


async def prepare(args: argparse.Namespace, batch_size: int) -> None:
    """Install the schema, time both enqueue styles, leave --jobs rows queued."""
    conn = await asyncpg.connect(**asyncpg_kwargs(args.dsn))
    try:
        queries = Queries.from_asyncpg_connection(conn)
        await queries.install()

        # One job per commit (asyncpg autocommits each statement): what an
        # application pays when each request enqueues its own job. Measured
        # on a sample, then thrown away so the drain sees exactly --jobs rows.
        if not args.no_single_sample:
            start = time.perf_counter()
            for _ in range(SINGLE_SAMPLE):
                await queries.enqueue(ENTRYPOINT, None)
            emit(SYSTEM, "enqueue_single", SINGLE_SAMPLE,
                 time.perf_counter() - start, batch_size=batch_size,
                 processes=args.processes)
            await conn.execute("TRUNCATE pgqueuer, pgqueuer_log")

        # Bulk load: list arguments make enqueue() a single multi-row INSERT.
        start = time.perf_counter()
        for i in range(0, args.jobs, args.enqueue_chunk):
            n = min(args.enqueue_chunk, args.jobs - i)
            await queries.enqueue([ENTRYPOINT] * n, [None] * n, [0] * n)
        emit(SYSTEM, "enqueue_batch", args.jobs, time.perf_counter() - start,
             batch_size=batch_size, processes=args.processes,
             chunk=args.enqueue_chunk)

        # A freshly filled table has no statistics; without ANALYZE the
        # planner picks poor plans for the dequeue query and the drain is
        # 2-3x slower than in any steady-state deployment.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def consume(dsn: str, batch_size: int, timeout: float, ready) -> None:
    conn = await asyncpg.connect(**asyncpg_kwargs(dsn))
    try:
        qm = QueueManager(Queries.from_asyncpg_connection(conn))

        @qm.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            return None

        # Connected and registered: only the drain itself is on the clock.
        await asyncio.to_thread(ready.wait)
        # Drain mode ends run() once no job is queued and this consumer's
        # in-flight jobs are done (their status buffer is flushed on exit).
        # dequeue_timeout stays at the library default: completions wake the
        # loop through NOTIFY, so the drain never waits on it (checked with
        # 0.1 s and 30 s: same times). The log-aggregation timer is off: it is
        # housekeeping whose 30 s default a drain never reaches anyway.
        await asyncio.wait_for(
            qm.run(
                batch_size=batch_size,
                mode=QueueExecutionMode.drain,
                log_aggregation_interval=timedelta(0),
            ),
            timeout=timeout,
        )
    finally:
        await conn.close()


def consumer_main(dsn: str, batch_size: int, timeout: float, ready) -> None:
    try:
        arun(consume(dsn, batch_size, timeout, ready))
    except asyncio.TimeoutError:
        print(f"consumer timed out after {timeout}s", file=sys.stderr)
        sys.exit(2)


async def remaining(dsn: str) -> tuple[int, int]:
    """(rows still in the queue, successful rows in the log)."""
    conn = await asyncpg.connect(**asyncpg_kwargs(dsn))
    try:
        left = await conn.fetchval("SELECT count(*) FROM pgqueuer")
        done = await conn.fetchval(
            "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
        )
        return int(left), int(done)
    finally:
        await conn.close()


def drain(args: argparse.Namespace, batch_size: int) -> bool:
    seconds, codes = run_in_children(
        consumer_main, (args.dsn, batch_size, args.timeout), args.processes,
        args.timeout)
    left, done = arun(remaining(args.dsn))
    if seconds is None or left != 0 or done != args.jobs:
        print(f"drain incomplete: {left} jobs left, {done}/{args.jobs} logged, "
              f"exit codes {codes}", file=sys.stderr)
        return False
    emit(SYSTEM, "process", args.jobs, seconds, batch_size=batch_size,
         processes=args.processes)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], "jobs per multi-row enqueue call")
    p.add_argument("--batch-sizes", default="10,100,200",
                   help="comma-separated dequeue batch sizes")
    p.add_argument("--processes", type=int, default=1,
                   help="consumer processes draining the same queue")
    args = p.parse_args(argv)
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    if (args.jobs <= 0 or args.processes <= 0 or args.enqueue_chunk <= 0
            or not args.batch_sizes or min(args.batch_sizes) <= 0):
        p.error("--jobs, --processes, --enqueue-chunk and --batch-sizes "
                "must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ok = True
    for batch_size in args.batch_sizes:
        reset_database(args.dsn)
        arun(prepare(args, batch_size))
        ok = drain(args, batch_size) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
