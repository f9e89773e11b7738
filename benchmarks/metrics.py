#!/usr/bin/env python3
"""What metrics cost: per job in the runner, per scrape in the database.

    .venv/bin/python benchmarks/metrics.py tally
    .venv/bin/python benchmarks/metrics.py scrape [--jobs 1000000]

``tally``: the runner's added work per job — `Attempt.seconds` and
`Tally.outcome` (a dict look-up, a bisect, three additions), as
`Execution._count` calls them — timed over a million calls, against the
same loop without them. Needs no database.

``scrape``: a fresh database (``JOBS_BENCH_DB``, default
``jobs_bench_metrics``) of `--jobs` rows over four kinds (two sections
and two kinds no section claims) — 90% COMPLETED, 5% FAILED, 3% WAITING,
1% RUNNING, the rest SUSPENDED and CANCELLED — ANALYZEd; then 30
uncached scrapes (`jobs.counts.take` and the Prometheus text of
``jobs web``'s registry) and the dashboard's list pages, each timed.
Prints one JSON line: median and worst milliseconds of each.
"""

import argparse
import json
import os
import statistics
import sys
import time
import timeit

os.environ.setdefault("JOBS_BENCH_DB", "jobs_bench_metrics")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def bench_tally(calls=1_000_000):
    from jobs.attempt import Attempt
    from jobs.metrics.tally import Tally
    attempt = Attempt(1, 1, 0, 60.0, False, False)
    attempt.start()
    tally = Tally("bench")
    outcome = "complete"

    def with_tally():
        tally.outcome("DoFooJob", outcome, attempt.seconds(), attempt.lost)

    def without():
        pass

    runs = []
    for _ in range(5):
        added = timeit.timeit(with_tally, number=calls)
        base = timeit.timeit(without, number=calls)
        runs.append((added - base) / calls * 1e9)
    return {"mode": "tally", "calls": calls,
            "added_ns_per_job": round(min(runs), 1),
            "added_ns_per_job_median": round(statistics.median(runs), 1)}


FILL = """
INSERT INTO job (status, kind, date_created, date_finished)
SELECT s.status, s.kind,
       now() AT TIME ZONE 'UTC' - (g * interval '50 milliseconds'),
       CASE WHEN s.status IN (2, 3, 5)
            THEN now() AT TIME ZONE 'UTC' - (g * interval '40 milliseconds')
       END
FROM generate_series(1, %(count)s) g,
LATERAL (SELECT
    CASE WHEN g %% 100 < 90 THEN 2 WHEN g %% 100 < 95 THEN 3
         WHEN g %% 100 < 98 THEN 0 WHEN g %% 100 < 99 THEN 1
         WHEN g %% 200 < 199 THEN 4 ELSE 5 END AS status,
    (ARRAY['foo_job:0', 'foo_job:1', 'task:app.a', 'task:app.b'])[
        1 + (g / 7) %% 4] AS kind) s
"""


def timed(function, times):
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return {"median_ms": round(statistics.median(seconds) * 1000, 2),
            "max_ms": round(max(seconds) * 1000, 2)}


def bench_scrape(count):
    import transaction
    from prometheus_client import generate_latest

    from jobs import counts
    from jobs.database import get_store
    from jobs.interfaces.job import JobStatus
    from jobs.jobfilter import JobFilter
    from jobs.metrics.collector import registry
    harness.fresh_database()
    config = harness.configure()
    store = get_store()
    store.execute(FILL % {"count": count})
    # A running job's lease, as a runner's claim leaves it.
    store.execute("UPDATE job SET lease_expires = now() AT TIME ZONE 'UTC'"
                  " + interval '1 hour' WHERE status = 1")
    transaction.commit()
    raw = store.get_database().raw_connect()
    raw.autocommit = True
    raw.cursor().execute("VACUUM ANALYZE job")
    raw.close()
    scrape = registry(lambda: (get_store(), config))

    def uncached():
        counts.forget()
        generate_latest(scrape)
        transaction.abort()

    def take():
        counts.take(store, config)
        transaction.abort()

    def page(job_filter, pages=1):
        def run():
            before = None
            for _ in range(pages):
                _, before = job_filter.page(store, config, before)
            transaction.abort()
        return run

    uncached()  # the kinds' sections are found once a minute
    result = {"mode": "scrape", "jobs": count,
              "scrape": timed(uncached, 30), "counts_take": timed(take, 30)}
    for name, job_filter, pages in (
            ("list_all_first_page", JobFilter(), 1),
            ("list_all_20_pages", JobFilter(), 20),
            ("list_failed", JobFilter(statuses=(JobStatus.FAILED,)), 1),
            ("list_waiting_of_a_kind", JobFilter(
                statuses=(JobStatus.WAITING,), kinds=("task:app.b",)), 1),
            ("list_of_a_kind_page_100", JobFilter(kinds=("foo_job:1",)),
             100)):
        result[name] = timed(page(job_filter, pages), 10)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("tally", "scrape"))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    options = parser.parse_args()
    if options.mode == "tally":
        result = bench_tally()
    else:
        result = bench_scrape(options.jobs)
    result["load"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
