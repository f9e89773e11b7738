#!/usr/bin/env python3
"""Cost of the ready-job query and of a claim with 10k and with 1M
finished jobs in the table (the partial indexes must keep it flat).

    .venv/bin/python benchmarks/scale.py [--big 1000000]

Each figure is the median of 50 runs over 1,000 waiting jobs; the 10k
figure is the baseline of the ratio.
"""

import argparse
import time

import harness
import transaction

from jobs.testing.foojob import DoFooJob


def median_ms(function, runs=50):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
        transaction.abort()
    return harness.median(times) * 1000


def ready_query():
    # What iterReady runs: the first 100 ready ids of the source.
    DoFooJob.readyJobIds(100)


def claim():
    # Claim 100 and roll back: the queue stays as it was.
    DoFooJob.claimReady(100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10000)
    parser.add_argument("--big", type=int, default=1000000)
    options = parser.parse_args()
    harness.header("scale")
    harness.fresh_database()
    harness.configure()
    results = {}
    for finished in (options.small, options.big):
        harness.load_jobs(1000, finished=finished)
        results[finished] = (median_ms(ready_query), median_ms(claim))
        harness.emit(measure="scale", finished_jobs=finished,
                     ready_query_ms=round(results[finished][0], 3),
                     claim_100_ms=round(results[finished][1], 3))
    small, big = results[options.small], results[options.big]
    print("# ratio %d vs %d finished: ready query %.2fx, claim %.2fx"
          " (target within 1.5x)" % (options.big, options.small,
                                     big[0] / small[0], big[1] / small[1]))


if __name__ == "__main__":
    main()
