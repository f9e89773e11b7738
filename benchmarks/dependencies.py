#!/usr/bin/env python3
"""The claim with dependencies (issue 16, item 2): its cost with --jobs
jobs in chains against the same number of jobs without dependencies.

    .venv/bin/python benchmarks/dependencies.py [--jobs 10000]
        [--chain 10] [--runs 200]

Two scenarios, each in a fresh database, loaded through the public API
(``DoFooJob.createMany``) and ANALYZEd:

  independent  --jobs jobs, all ready
  chains       --jobs jobs in chains of --chain: the heads are ready, the
               rest BLOCKED, each waiting for the one before

For each, the median of --runs claims (of 1 and of 10 jobs, rolled back,
so the queue stays as it was).
is not possible (one database each): each scenario's runs come one after
the other, with the load average printed beside them. Bound: the chains'
claim within 1.5x of the independent one.
"""

import argparse
import os
import sys
import time

import harness
import transaction

from jobs.interfaces.job import JobStatus
from jobs.testing.foojob import DoFooJob, Foo

BOUND = 1.5


def load(jobs, chain):
    """Create `jobs` jobs, in chains of `chain` (1: independent)."""
    store = harness.get_store()
    foo = Foo("bench")
    store.add(foo)
    store.flush()
    previous = None
    heads = jobs // chain
    for level in range(chain):
        rows = [{"foo": foo, "json_data": {}} for _ in range(heads)]
        if previous is not None:
            for row, before in zip(rows, previous):
                row["depends_on"] = [before]
        previous = DoFooJob.createMany(rows)
        transaction.commit()
    harness.analyze()


def median_ms(limit, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        claimed = DoFooJob.claimReady(limit)
        times.append(time.perf_counter() - started)
        assert len(claimed) == limit, len(claimed)
        transaction.abort()  # the queue stays as it was
    return harness.median(times) * 1000


def scenario(name, options):
    harness.fresh_database()
    harness.configure()
    load(options.jobs, options.chain if name == "chains" else 1)
    counts = dict(harness.get_store().execute(
        "SELECT status, count(*) FROM job GROUP BY status"))
    transaction.abort()
    figures = {}
    for limit in (1, 10):
        median_ms(limit, 10)  # warm the caches and the statement
        figures[limit] = median_ms(limit, options.runs)
        harness.emit(measure="dependencies", scenario=name, claim=limit,
                     median_ms=round(figures[limit], 4),
                     waiting=counts.get(JobStatus.WAITING.value, 0),
                     blocked=counts.get(JobStatus.BLOCKED.value, 0),
                     load=harness.load_average())
    return figures


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    options = parser.parse_args()
    if min(options.jobs, options.chain, options.runs) < 1 or \
            options.chain > options.jobs:
        parser.error("--jobs, --chain and --runs must be positive, and"
                     " --chain at most --jobs")
    harness.header("dependencies")
    independent = scenario("independent", options)
    chains = scenario("chains", options)
    print()
    print("| claim | independent | chains of %d | ratio | bound |"
          % options.chain)
    print("|---|---|---|---|---|")
    for limit in (1, 10):
        ratio = chains[limit] / independent[limit]
        print("| %d | %.3f ms | %.3f ms | %.2fx | within %.1fx: %s |" % (
            limit, independent[limit], chains[limit], ratio, BOUND,
            "met" if ratio <= BOUND else "missed"))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
