#!/usr/bin/env python3
"""The framework's floor: the statements a runner sends per job, sent by
raw psycopg2 as server-side prepared statements, with no framework (no
ORM object, no logging, no outcome policy) around them.

    .venv/bin/python benchmarks/raw_ceiling.py --shape per-job|group \
        [--processes 1] [--database jobs_bench]

It drains the WAITING ``DoFooJob`` jobs already loaded in the benchmark
database (``throughput.py`` loads them) and prints one JSON line:
``{"shape", "processes", "jobs", "seconds", "jobs_per_s"}``. The clock
starts once every process is connected and has prepared its statements
(as the peers' harness does), and stops when the last one has drained.

The statements are the ones a runner sends (Storm tracer, 2026-11-30,
after issue 15), already prepared there too (``$n`` parameters, id lists
as arrays), and each transaction's ``BEGIN`` goes with its first
statement (psycopg2 in autocommit mode, ``BEGIN; EXECUTE ...`` in one
round trip) as the framework sends it:

``claim``   the fenced claim: ``UPDATE job SET status = RUNNING,
            attempt_count + 1, lease, date_started WHERE id IN (the best
            LIMIT of two ``FOR UPDATE OF job SKIP LOCKED`` sub-selects:
            waiting jobs, and orphans with attempts left) RETURNING id,
            attempt_count, priority``, in a WITH whose SELECT joins each
            claimed job's context row (``foo_job``); LIMIT 1 or 200.
``lock``    (group only) ``SELECT id, status, attempt_count,
            cancel_requested FROM job WHERE id = ANY($1) FOR UPDATE``.
``done``    the outcome, fenced on RUNNING and the attempt: ``UPDATE job
            SET status = COMPLETED, date_finished WHERE status = RUNNING
            AND id = ANY($1) AND (id, attempt_count) IN (unnest($1,
            $2))``.

Shapes (the transactions the framework makes):

``per-job`` (``batch_size: 1``): ``claim(1); COMMIT`` once, then per job
    ``BEGIN; done`` + ``claim(1)`` of the next job with its context row
    (it rides on this job's commit) + ``COMMIT``: three round trips and
    one commit a job.
``group`` (``batch_size: 200``, ``group_commit: 200``): per 200 jobs
    ``BEGIN; claim(200); COMMIT``, then ``BEGIN; lock`` + ``done`` +
    ``COMMIT``.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time

import psycopg2

RUNNING, COMPLETED, WAITING = 1, 2, 0
NOW = "(statement_timestamp() AT TIME ZONE 'UTC')"

CLAIM = """
PREPARE claim(integer, float8) AS
UPDATE job SET status = {running}, attempt_count = attempt_count + 1,
    lease_expires = {now} + $2 * interval '1 second',
    date_started = {now}, date_finished = NULL
WHERE job.id IN (
    SELECT ready.id FROM (
        SELECT * FROM (
            SELECT job.id, job.priority FROM job, foo_job
            WHERE foo_job.job = job.id AND foo_job.job_type = $1
              AND job.status = {waiting}
              AND (job.lease_expires IS NULL OR job.lease_expires < {now})
              AND (job.scheduled_start IS NULL OR job.scheduled_start <= {now})
            ORDER BY job.priority DESC, job.id LIMIT {limit}
            FOR UPDATE OF job SKIP LOCKED) AS waiting
        UNION ALL
        SELECT * FROM (
            SELECT job.id, job.priority FROM job, foo_job
            WHERE foo_job.job = job.id AND foo_job.job_type = $1
              AND job.status = {running} AND job.lease_expires < {now}
              AND job.attempt_count <= job.max_retries
            ORDER BY job.priority DESC, job.id LIMIT {limit}
            FOR UPDATE OF job SKIP LOCKED) AS orphaned
    ) AS ready ORDER BY ready.priority DESC, ready.id LIMIT {limit})
RETURNING job.id, job.attempt_count, job.priority
"""
# The claim's rows with each job's context row, as the framework reads them.
CLAIM = CLAIM.replace("AS\nUPDATE", "AS\nWITH claimed AS (UPDATE").rstrip() + """)
SELECT claimed.*, foo_job.foo, foo_job.id, foo_job.job, foo_job.job_type,
       foo_job.json_data
FROM claimed LEFT JOIN foo_job ON foo_job.job = claimed.id
"""
LOCK = """
PREPARE lock(integer[]) AS
SELECT id, status, attempt_count, cancel_requested FROM job
WHERE id = ANY($1) FOR UPDATE
"""
DONE = """
PREPARE done(integer[], integer[]) AS
UPDATE job SET status = {completed}, date_finished = {now}
WHERE status = {running} AND id = ANY($1)
  AND (id, attempt_count) IN (SELECT * FROM unnest($1, $2))
"""

LIMITS = {"per-job": 1, "group": 200}
LEASE_SECONDS = 300.0  # DoFooJob's lease_duration: what a section without
#                        lease_seconds claims with
DO_FOO = 0  # FooJobType.DO_FOO


def prepare(connection, limit):
    names = dict(running=RUNNING, waiting=WAITING, completed=COMPLETED,
                 now=NOW, limit=limit)
    with connection.cursor() as cursor:
        for statement in (CLAIM, LOCK, DONE):
            cursor.execute(statement.format(**names))
    connection.commit()
    connection.autocommit = True  # BEGIN goes with the first statement


def claim(cursor, begin=""):
    cursor.execute(begin + "EXECUTE claim(%s, %s)", (DO_FOO, LEASE_SECONDS))
    rows = cursor.fetchall()
    rows.sort(key=lambda row: (-row[2], row[0]))
    return rows


def run_job(row):
    # What DoFooJob.run() does with no behaviour asked: read json_data.
    data = row[7]
    return data.get("return_") if isinstance(data, dict) else None


def drain_per_job(connection):
    done = 0
    cursor = connection.cursor()
    claimed = claim(cursor, "BEGIN; ")
    cursor.execute("COMMIT")
    while claimed:
        row, = claimed
        run_job(row)
        cursor.execute("BEGIN; EXECUTE done(%s, %s)", ([row[0]], [row[1]]))
        done += cursor.rowcount
        claimed = claim(cursor)  # the next job, on this job's commit
        cursor.execute("COMMIT")
    return done


def drain_group(connection):
    done = 0
    cursor = connection.cursor()
    limit = LIMITS["group"]
    while True:
        claimed = claim(cursor, "BEGIN; ")
        cursor.execute("COMMIT")
        if not claimed:
            break
        ids = [row[0] for row in claimed]
        cursor.execute("BEGIN; EXECUTE lock(%s)", (ids,))
        cursor.fetchall()
        for row in claimed:
            run_job(row)
        cursor.execute("EXECUTE done(%s, %s)",
                       (ids, [row[1] for row in claimed]))
        done += cursor.rowcount
        cursor.execute("COMMIT")
        if len(claimed) < limit:
            break
    return done


DRAIN = {"per-job": drain_per_job, "group": drain_group}


def consumer(database, shape, barrier, results):
    connection = psycopg2.connect(dbname=database)
    prepare(connection, LIMITS[shape])
    barrier.wait()
    results.put(DRAIN[shape](connection))
    connection.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(DRAIN), required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--database",
                        default=os.environ.get("JOBS_BENCH_DB", "jobs_bench"))
    options = parser.parse_args(argv)
    if options.processes < 1:
        parser.error("--processes must be at least 1")
    barrier = multiprocessing.Barrier(options.processes + 1)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(
        target=consumer, args=(options.database, options.shape, barrier,
                               results))
        for _ in range(options.processes)]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    done = sum(results.get(timeout=1800) for _ in workers)
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    if any(worker.exitcode for worker in workers):
        print("a consumer failed", file=sys.stderr)
        return 1
    print(json.dumps(dict(shape=options.shape, processes=options.processes,
                          jobs=done, seconds=round(seconds, 4),
                          jobs_per_s=round(done / seconds, 1))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
