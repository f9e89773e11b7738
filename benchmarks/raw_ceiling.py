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
``lock``    (group only) the framework's own `jobs.model.claims.LOCK_SQL`:
            the group's rows locked ``FOR NO KEY UPDATE``, answered as
            one row (the claims that moved on, the cancelled ones).
``done``    (group only) the group's outcomes, fenced on RUNNING and
            the attempt, as the Storm tracer shows the framework's
            (2026-11-30): `jobs.model.records.record_completed`'s
            ``UPDATE ... FROM unnest($1, $2, ...)`` in a WITH answered
            as one row (the count, the ids with dependents).

Id lists go as one array literal each (``'{1,2,3}'``), as the framework
sends them (`jobs.database.stormext.IntArray`).

Shapes (the transactions the framework makes):

``per-job`` (``batch_size: 1``): ``claim(1); COMMIT`` once, then per job
    one ``EXECUTE`` of the framework's completing claim
    (`jobs.model.claimsql.completing_statement`: this job's outcome and
    the claim of the next with its context row, in one statement) sent
    outside a transaction, so that it commits by itself: one round trip
    and one commit a job.
``group`` (``batch_size: 200``, ``group_commit: 200``): ``claim(200);
    COMMIT`` once, then per 200 jobs ``BEGIN; lock`` + ``done`` + the
    next ``claim(200)`` (it rides on this group's commit) + ``COMMIT``.
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

DONE = """
PREPARE done AS
WITH updated AS (
UPDATE job SET status = {completed}, date_finished = {now},
    lease_expires = NULL, log = coalesce(given.log_tail, job.log),
    progress = coalesce(given.progress_tree, job.progress),
    result = coalesce(given.returned, job.result)
FROM unnest($1::integer[], $2::integer[], $3::text[], $4::text[],
            $5::text[]) AS given(job_id, attempt, log_tail, progress_tree,
                                 returned)
WHERE job.id = given.job_id AND job.attempt_count = given.attempt
  AND job.status = {running} RETURNING job.id, job.has_dependents)
SELECT count(*), array_agg(id) FILTER (WHERE has_dependents) FROM updated
"""

LIMITS = {"per-job": 1, "group": 200}
LEASE_SECONDS = 60.0  # what the runner claims DoFooJob with (tracer)
# The claim's rows: the claim's 8 columns, then foo_job's foo, id, job,
# job_type, json_data.
PRIORITY, JSON_DATA = 5, 12


def framework_claim(database, limit, completing=False):
    """``(PREPARE text, parameters)`` of the framework's claim of `limit`
    ``DoFooJob`` jobs, built by the framework itself (so that the
    ceiling is its very statement), with this process's claimer in
    ``claimed_by``'s place. `completing`: the claim that first records a
    completion (named ``completing``), whose parameters are then
    ``(head, tail)``: a completion's six values go between them."""
    import harness  # noqa: F401 (puts the checkout's lib on sys.path)
    from jobs.database import connect, disconnect, get_store
    from jobs.database.prepared import numbered
    from jobs.database.stormext import database_values
    from jobs.model.claims import LOCK_SQL
    from jobs.model.claimsql import claim_statement, completing_statement
    from jobs.testing.foojob import DoFooJob
    connect("postgres:///%s" % database)
    try:
        store = get_store()
        condition, tables = DoFooJob.jobCondition()
        arguments = (store, condition, tables, limit, LEASE_SECONDS, True,
                     DoFooJob.claimLoad())
        if completing:
            sql, head, before, after = completing_statement(*arguments)
            parameters = (database_values(store, head), database_values(
                store, before + ["raw-ceiling"] + after))
        else:
            sql, before, after = claim_statement(*arguments)
            parameters = database_values(
                store, before + ["raw-ceiling"] + after)
    finally:
        disconnect()
    return ("PREPARE %s AS %s" % ("completing" if completing else "claim",
                                  numbered(sql)[0]), parameters,
            "PREPARE lock AS %s" % numbered(LOCK_SQL)[0])


def prepare(connection, shape, claim_sql, completing_sql, lock_sql):
    names = dict(running=RUNNING, completed=COMPLETED, now=NOW)
    with connection.cursor() as cursor:
        cursor.execute(claim_sql)
        if shape == "group":
            cursor.execute(lock_sql)
            cursor.execute(DONE.format(**names))
        else:
            cursor.execute(completing_sql)
    connection.commit()


def claim(cursor, parameters, begin=""):
    cursor.execute(begin + "EXECUTE claim(%s)" % ", ".join(
        ["%s"] * len(parameters)), parameters)
    rows = cursor.fetchall()
    rows.sort(key=lambda row: (-row[PRIORITY], row[0]))
    return rows


def array(values):
    """An integer array as one literal, as the framework sends its id
    lists (`jobs.database.stormext.IntArray`): psycopg2 adapts a list
    element by element, at about 0.8 µs an integer."""
    return "{%s}" % ",".join(map(str, values))


def run_job(row):
    # What DoFooJob.run() does with no behaviour asked: read json_data.
    data = row[JSON_DATA]
    return data.get("return_") if isinstance(data, dict) else None


def drain_per_job(connection, parameters, completing):
    done = 0
    cursor = connection.cursor()
    claimed = claim(cursor, parameters, "BEGIN; ")
    cursor.execute("COMMIT")
    head, tail = completing
    execute = "EXECUTE completing(%s)" % ", ".join(
        ["%s"] * (len(head) + 6 + len(tail)))
    while claimed:
        row, = claimed
        run_job(row)
        # This job's outcome and the next claim: a transaction of its own.
        cursor.execute(execute, head + [None, None, None, row[0], row[0],
                                        row[1]] + tail)
        rows = cursor.fetchall()
        done += rows[0][0]
        claimed = [row[1:] for row in rows if row[1] is not None]
    return done


def drain_group(connection, parameters, completing):
    done = 0
    cursor = connection.cursor()
    limit = LIMITS["group"]
    claimed = claim(cursor, parameters, "BEGIN; ")
    cursor.execute("COMMIT")
    while claimed:
        ids = array(row[0] for row in claimed)
        attempts = array(row[1] for row in claimed)
        cursor.execute("BEGIN; EXECUTE lock(%s, %s, %s)",
                       (ids, attempts, ids))
        cursor.fetchall()
        for row in claimed:
            run_job(row)
        nothing = [None] * len(claimed)
        cursor.execute("EXECUTE done(%s, %s, %s, %s, %s)",
                       (ids, attempts, nothing, nothing, nothing))
        done += cursor.fetchone()[0]
        # A full group's commit publishes the next claim too.
        full = len(claimed) >= limit
        claimed = claim(cursor, parameters) if full else []
        cursor.execute("COMMIT")
    return done


DRAIN = {"per-job": drain_per_job, "group": drain_group}


def consumer(database, shape, claims, barrier, results):
    (claim_sql, parameters, lock_sql), (completing_sql, completing, _) = \
        claims
    connection = psycopg2.connect(dbname=database)
    prepare(connection, shape, claim_sql, completing_sql, lock_sql)
    connection.autocommit = True  # BEGIN goes with the first statement
    barrier.wait()
    results.put(DRAIN[shape](connection, parameters, completing))
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
    limit = LIMITS[options.shape]
    claims = (framework_claim(options.database, limit),
              framework_claim(options.database, limit, completing=True))
    barrier = multiprocessing.Barrier(options.processes + 1)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(
        target=consumer, args=(options.database, options.shape, claims,
                               barrier, results))
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
