"""Throughput of procrastinate (a peer Postgres job queue) on the local server.

Run with the peers venv (see setup.sh), never with the project's interpreter:

    benchmarks/.venv-peers/bin/python benchmarks/peers/procrastinate_bench.py \
        --jobs 10000 --concurrency 1,4 [--processes 2]

For every concurrency the database is dropped and recreated, so each figure
starts from the same empty state. One JSON object per measurement goes to
stdout; anything else (library logs, warnings) goes to stderr.

Workers run in the parent process with --processes 1 (the default), and in
that many spawned child processes otherwise; with children the clock starts
when every child has opened its app and stops when the last one has exited
(as pgqueuer_bench.py times its consumers).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import procrastinate
from peer_common import (SINGLE_SAMPLE, emit, parser, reset_database,
                         run_in_children)

SYSTEM = "procrastinate"


def make_app(dsn: str, concurrency: int) -> tuple[procrastinate.App, object]:
    # The worker holds one connection per in-flight job plus its LISTEN,
    # heartbeat and abort-polling connections; size the pool so that the
    # pool is never what limits throughput.
    connector = procrastinate.PsycopgConnector(
        conninfo=dsn, min_size=concurrency + 4, max_size=concurrency + 4
    )
    app = procrastinate.App(connector=connector)

    # async so that concurrency > 1 is real asyncio concurrency; a sync task
    # would be pushed to a thread per job and measure the thread hop instead.
    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app, noop


async def count_jobs(app: procrastinate.App, status: str | None = None) -> int:
    if status is None:
        query = "SELECT count(*) AS n FROM procrastinate_jobs"
        row = await app.connector.execute_query_one_async(query)
    else:
        query = "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = %(s)s"
        row = await app.connector.execute_query_one_async(query, s=status)
    return int(row["n"])


async def fill(args: argparse.Namespace, app: procrastinate.App, noop,
               concurrency: int) -> None:
    """Install the schema, time both enqueue styles, leave --jobs rows queued."""
    await app.schema_manager.apply_schema_async()

    if not args.no_single_sample:
        # One job per commit: what an application pays when each request
        # defers its own job. Measured on a sample, then thrown away so the
        # drain below sees exactly --jobs rows.
        start = time.perf_counter()
        for _ in range(SINGLE_SAMPLE):
            await noop.defer_async()
        emit(SYSTEM, "enqueue_single", SINGLE_SAMPLE,
             time.perf_counter() - start, concurrency=concurrency)
        await app.connector.execute_query_async(
            "TRUNCATE procrastinate_jobs RESTART IDENTITY CASCADE"
        )

    # Bulk load through the batch API (one INSERT per chunk).
    payloads = [{}] * args.jobs
    start = time.perf_counter()
    for i in range(0, args.jobs, args.enqueue_chunk):
        await noop.batch_defer_async(*payloads[i : i + args.enqueue_chunk])
    emit(SYSTEM, "enqueue_batch", args.jobs, time.perf_counter() - start,
         concurrency=concurrency, chunk=args.enqueue_chunk)

    # A freshly filled table has no statistics; without ANALYZE the
    # planner picks poor plans for the fetch query and the drain is
    # 2-3x slower than in any steady-state deployment.
    await app.connector.execute_query_async("ANALYZE")


async def work(app: procrastinate.App, concurrency: int, timeout: float) -> None:
    # wait=False is procrastinate's burst mode: the worker returns once a
    # fetch finds no job and the in-flight jobs have finished.
    await asyncio.wait_for(
        app.run_worker_async(
            concurrency=concurrency,
            wait=False,
            install_signal_handlers=False,
        ),
        timeout=timeout,
    )


async def child_work(dsn: str, concurrency: int, timeout: float, ready) -> None:
    app, _ = make_app(dsn, concurrency)
    async with app.open_async():
        # Connected: only the drain itself is on the clock.
        await asyncio.to_thread(ready.wait)
        await work(app, concurrency, timeout)


def child_main(dsn: str, concurrency: int, timeout: float, ready) -> None:
    try:
        asyncio.run(child_work(dsn, concurrency, timeout, ready))
    except asyncio.TimeoutError:
        print(f"worker timed out after {timeout}s", file=sys.stderr)
        sys.exit(2)


def drain_in_children(args: argparse.Namespace, concurrency: int) -> float | None:
    """Drain with --processes spawned workers; return the seconds, or None."""
    seconds, codes = run_in_children(
        child_main, (args.dsn, concurrency, args.timeout), args.processes,
        args.timeout)
    if seconds is None:
        print(f"a worker failed: exit codes {codes}", file=sys.stderr)
    return seconds


async def run_round(args: argparse.Namespace, concurrency: int) -> bool:
    reset_database(args.dsn)
    app, noop = make_app(args.dsn, concurrency)
    async with app.open_async():
        await fill(args, app, noop, concurrency)
        if args.processes == 1:
            start = time.perf_counter()
            try:
                await work(app, concurrency, args.timeout)
            except asyncio.TimeoutError:
                print(f"drain timed out after {args.timeout}s", file=sys.stderr)
                return False
            seconds = time.perf_counter() - start
        else:
            seconds = await asyncio.to_thread(
                drain_in_children, args, concurrency)
            if seconds is None:
                return False

        done = await count_jobs(app, "succeeded")
        total = await count_jobs(app)
        if done != args.jobs or total != args.jobs:
            print(f"expected {args.jobs} succeeded jobs, found {done} of {total}",
                  file=sys.stderr)
            return False
        emit(SYSTEM, "process", args.jobs, seconds, concurrency=concurrency,
             processes=args.processes)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0], "jobs per batch_defer call")
    p.add_argument("--concurrency", default="1,4",
                   help="comma-separated worker concurrencies")
    p.add_argument("--processes", type=int, default=1,
                   help="worker processes draining the same queue")
    args = p.parse_args(argv)
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if (args.jobs <= 0 or args.enqueue_chunk <= 0 or not args.concurrency
            or min(args.concurrency) <= 0 or args.processes <= 0):
        p.error("--jobs, --enqueue-chunk, --concurrency and --processes must"
                " be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ok = True
    for concurrency in args.concurrency:
        ok = asyncio.run(run_round(args, concurrency)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
