#!/usr/bin/env python3
"""Enqueue throughput: jobs created per second from one process, committed.

    .venv/bin/python benchmarks/enqueue.py [--jobs 100000] [--batch 5000]
        [--one-by-one 5000] [--runs 3]

Modes: ``Task.bulk`` (function jobs, `--batch` calls per bulk and per
commit), ``DoFooJob.createMany`` (typed jobs, the same), and, for
comparison, one ``.delay()`` / one ``DoFooJob.create()`` per job
(`--one-by-one` jobs, one commit at the end). Each figure is the median
of `--runs` runs, each on an emptied queue; the database is
``JOBS_BENCH_DB`` (default jobs_bench), recreated first.
"""

import argparse

import harness
from harness import transaction

from jobs.database import get_store
from jobs.registration import register_components
from jobs.config import set_config
from jobs.testing import tasks
from jobs.testing.fixtures import ConfigFixture
from jobs.testing.foojob import DoFooJob, Foo


def empty():
    store = get_store()
    for table in ("task_job", "foo_job", "job", "foo"):
        store.execute("DELETE FROM %s" % table)
    foo = Foo("bench")
    store.add(foo)
    store.flush()
    transaction.commit()
    harness.analyze()
    return store.find(Foo).one()


def bulk_tasks(total, batch, foo):
    for first in range(0, total, batch):
        tasks.behave.bulk([(n,) for n in range(first, min(total,
                                                           first + batch))])
        transaction.commit()


def bulk_typed(total, batch, foo):
    for first in range(0, total, batch):
        DoFooJob.createMany([{"foo": foo, "json_data": {"n": n}}
                             for n in range(first, min(total, first + batch))])
        transaction.commit()


def one_task_at_a_time(total, batch, foo):
    for n in range(total):
        tasks.behave.delay(n)
    transaction.commit()


def one_typed_at_a_time(total, batch, foo):
    for n in range(total):
        DoFooJob.create(foo, n=n)
    transaction.commit()


def measure(name, function, total, batch, runs):
    rates = []
    for _ in range(runs):
        foo = empty()
        seconds, _ = harness.timed(function, total, batch, foo)
        count = get_store().execute("SELECT count(*) FROM job").get_one()[0]
        transaction.abort()
        assert count == total, (name, count, total)
        rates.append(total / seconds)
    harness.emit(measure="enqueue", mode=name, jobs=total, batch=batch,
                 runs=runs, median_jobs_per_s=round(harness.median(rates)),
                 all_jobs_per_s=[round(rate) for rate in rates])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--one-by-one", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    harness.header("enqueue")
    harness.fresh_database()
    fixture = ConfigFixture(tasks.SECTION)
    fixture.setUp()
    set_config(fixture.config)
    register_components(fixture.config)
    measure("Task.bulk", bulk_tasks, options.jobs, options.batch,
            options.runs)
    measure("DoFooJob.createMany", bulk_typed, options.jobs, options.batch,
            options.runs)
    measure("Task.delay one by one", one_task_at_a_time, options.one_by_one,
            None, options.runs)
    measure("DoFooJob.create one by one", one_typed_at_a_time,
            options.one_by_one, None, options.runs)
    fixture.cleanUp()


if __name__ == "__main__":
    main()
