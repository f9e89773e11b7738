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

The statements are the ones a runner sends, already prepared there too
(``$n`` parameters, id lists as arrays), and each transaction's
``BEGIN`` goes with its first statement (psycopg2 in autocommit mode,
``BEGIN; EXECUTE ...`` in one round trip) as the framework sends it:

``claim``   the framework's own claim statement, built at start-up (not
            timed) by `jobs.model.claimsql.claim_statement` for
            ``DoFooJob``: ``UPDATE job SET (RUNNING, the attempt, the
            lease, claimed_by, date_started) FROM (the best LIMIT of the
            three ``FOR NO KEY UPDATE OF job SKIP LOCKED`` parts of
            `jobs.model.job.first_ready`: undelayed waiting jobs, due
            scheduled ones, orphans) RETURNING ...``, in a WITH whose
            SELECT joins each claimed job's context row (``foo_job``);
            LIMIT 1 or 200.
``lock``    (group only) ``SELECT id, status, attempt_count,
            cancel_requested FROM job WHERE id = ANY($1) FOR NO KEY
            UPDATE``.
``done``    the outcome, fenced on RUNNING and the attempt, as the
            Storm tracer shows the framework's (2026-11-30): per job
            `jobs.model.records.record`'s ``UPDATE job SET status =
            COMPLETED, date_finished, lease_expires = NULL WHERE status =
            RUNNING AND id IN ($1) AND (id, attempt_count) IN (VALUES
            ($2, $3)) RETURNING ...``; per group `record_completed`'s
            ``UPDATE ... FROM unnest($1, $2, ...)``.

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

RUNNING, COMPLETED = 1, 2
NOW = "(statement_timestamp() AT TIME ZONE 'UTC')"
RETURNING = " RETURNING CASE WHEN job.has_dependents THEN job.id END"

LOCK = """
PREPARE lock(integer[]) AS
SELECT id, status, attempt_count, cancel_requested FROM job
WHERE id = ANY($1::integer[]) FOR NO KEY UPDATE
"""
DONE = {
    "per-job": """
PREPARE done AS
UPDATE job SET status = {completed}, date_finished = {now},
    lease_expires = NULL
WHERE status = {running} AND id IN ($1)
  AND (id, attempt_count) IN (VALUES (CAST($2 AS INTEGER),
                                      CAST($3 AS INTEGER)))""" + RETURNING,
    "group": """
PREPARE done AS
UPDATE job SET status = {completed}, date_finished = {now},
    lease_expires = NULL, log = coalesce(given.log_tail, job.log),
    progress = coalesce(given.progress_tree, job.progress),
    result = coalesce(given.returned, job.result)
FROM unnest($1::integer[], $2::integer[], $3::text[], $4::text[],
            $5::text[]) AS given(job_id, attempt, log_tail, progress_tree,
                                 returned)
WHERE job.id = given.job_id AND job.attempt_count = given.attempt
  AND job.status = {running}""" + RETURNING,
}

LIMITS = {"per-job": 1, "group": 200}
LEASE_SECONDS = 60.0  # what the runner claims DoFooJob with (tracer)
# The claim's rows: the claim's 8 columns, then foo_job's foo, id, job,
# job_type, json_data.
PRIORITY, JSON_DATA = 5, 12


def framework_claim(database, limit):
    """``(PREPARE text, parameters)`` of the framework's claim of `limit`
    ``DoFooJob`` jobs, built by the framework itself (so that the
    ceiling is its very statement), with this process's claimer in
    ``claimed_by``'s place."""
    import harness  # noqa: F401 (puts the checkout's lib on sys.path)
    from jobs.database import connect, disconnect, get_store
    from jobs.database.prepared import numbered
    from jobs.database.stormext import database_values
    from jobs.model.claimsql import claim_statement
    from jobs.testing.foojob import DoFooJob
    connect("postgres:///%s" % database)
    try:
        condition, tables = DoFooJob.jobCondition()
        sql, before, after = claim_statement(
            get_store(), condition, tables, limit, LEASE_SECONDS,
            started=True, load=DoFooJob.claimLoad())
        parameters = database_values(
            get_store(), before + ["raw-ceiling"] + after)
    finally:
        disconnect()
    return "PREPARE claim AS " + numbered(sql)[0], parameters


def prepare(connection, shape, claim_sql):
    names = dict(running=RUNNING, completed=COMPLETED, now=NOW)
    with connection.cursor() as cursor:
        cursor.execute(claim_sql)
        cursor.execute(LOCK)
        cursor.execute(DONE[shape].format(**names))
    connection.commit()
    connection.autocommit = True  # BEGIN goes with the first statement


def claim(cursor, parameters, begin=""):
    cursor.execute(begin + "EXECUTE claim(%s)" % ", ".join(
        ["%s"] * len(parameters)), parameters)
    rows = cursor.fetchall()
    rows.sort(key=lambda row: (-row[PRIORITY], row[0]))
    return rows


def run_job(row):
    # What DoFooJob.run() does with no behaviour asked: read json_data.
    data = row[JSON_DATA]
    return data.get("return_") if isinstance(data, dict) else None


def drain_per_job(connection, parameters):
    done = 0
    cursor = connection.cursor()
    claimed = claim(cursor, parameters, "BEGIN; ")
    cursor.execute("COMMIT")
    while claimed:
        row, = claimed
        run_job(row)
        cursor.execute("BEGIN; EXECUTE done(%s, %s, %s)",
                       (row[0], row[0], row[1]))
        done += cursor.rowcount
        # The next job, on this job's commit.
        claimed = claim(cursor, parameters)
        cursor.execute("COMMIT")
    return done


def drain_group(connection, parameters):
    done = 0
    cursor = connection.cursor()
    limit = LIMITS["group"]
    while True:
        claimed = claim(cursor, parameters, "BEGIN; ")
        cursor.execute("COMMIT")
        if not claimed:
            break
        ids = [row[0] for row in claimed]
        cursor.execute("BEGIN; EXECUTE lock(%s)", (ids,))
        cursor.fetchall()
        for row in claimed:
            run_job(row)
        nothing = [None] * len(ids)
        cursor.execute("EXECUTE done(%s, %s, %s, %s, %s)",
                       (ids, [row[1] for row in claimed], nothing, nothing,
                        nothing))
        done += cursor.rowcount
        cursor.execute("COMMIT")
        if len(claimed) < limit:
            break
    return done


DRAIN = {"per-job": drain_per_job, "group": drain_group}


def consumer(database, shape, claim_sql, parameters, barrier, results):
    connection = psycopg2.connect(dbname=database)
    prepare(connection, shape, claim_sql)
    barrier.wait()
    results.put(DRAIN[shape](connection, parameters))
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
    claim_sql, parameters = framework_claim(options.database,
                                            LIMITS[options.shape])
    barrier = multiprocessing.Barrier(options.processes + 1)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(
        target=consumer, args=(options.database, options.shape, claim_sql,
                               parameters, barrier, results))
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
