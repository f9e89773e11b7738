#!/usr/bin/env python3
"""Worker pickup latency: 1,000 jobs created one by one while one worker
listens; for each, the time from its commit to its start.

    .venv/bin/python benchmarks/latency.py [--jobs 1000]

Baseline in the same run: the same measurement with NOTIFY unused (the
worker polling every second), which is what cron-style polling gives at
best.
"""

import argparse
import os
import signal
import subprocess
import time
from datetime import datetime, timezone

import harness
import transaction

from jobs.model.job import Job
from jobs.testing.foojob import DoFooJob, Foo

SECTIONS = {
    "notify": "bench",
    "poll-1s": "bench_poll",
}
EXTRA = """
[bench_poll]
source_interface: jobs.testing.foojob.IDoFooJobSource
batch_size: 100
poll_interval: 1
"""


def listening(count):
    """True once `count` workers have run their NOTIFY self-check."""
    return harness.get_store().execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'NOTIFY%'"
        " OR query LIKE 'LISTEN%'").get_one()[0] >= count


def measure(section, jobs, no_notify):
    store = harness.get_store()
    harness.load_jobs(0)
    foo = store.find(Foo).one()
    transaction.commit()
    env = dict(os.environ)
    worker = subprocess.Popen(harness.run_jobs_command(
        "--worker", "-q", section), env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not listening(1) and time.monotonic() < deadline:
            transaction.abort()
            time.sleep(0.05)
        transaction.abort()
        if no_notify:
            # Drop the trigger: the worker can only find jobs by polling.
            store.execute("DROP TRIGGER job__notify_ready ON job")
            transaction.commit()
        committed = {}
        for _ in range(jobs):
            job = DoFooJob.create(foo)
            job_id = job.job_id
            transaction.commit()
            committed[job_id] = datetime.now(timezone.utc)
            # Pace creation like an application would: one at a time.
            time.sleep(0.002)
        while harness.count_status(2) < jobs:
            time.sleep(0.05)
        started = dict(store.find((Job.id, Job.date_started)))
        transaction.abort()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        if no_notify:
            harness.fresh_database()
    missing = [job_id for job_id in committed if started.get(job_id) is None]
    if missing:
        raise RuntimeError("jobs without a start: %s" % missing[:10])
    delays = sorted((started[job_id] - at).total_seconds() * 1000
                    for job_id, at in committed.items())
    return delays


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    options = parser.parse_args()
    harness.header("latency")
    harness.fresh_database()
    harness.SECTIONS += EXTRA
    harness.configure()
    results = {}
    for name, section in SECTIONS.items():
        delays = measure(section, options.jobs, no_notify=(name != "notify"))
        p50 = delays[len(delays) // 2]
        p99 = delays[int(len(delays) * 0.99) - 1]
        results[name] = (p50, p99)
        harness.emit(measure="commit-to-start latency", mode=name,
                     jobs=len(delays), p50_ms=round(p50, 2),
                     p99_ms=round(p99, 2), max_ms=round(delays[-1], 2))
    print("# ratio: NOTIFY p50 is %.4fx the 1 s poll's p50; targets p50 < 10"
          " ms, p99 < 50 ms" % (results["notify"][0] / results["poll-1s"][0]))


if __name__ == "__main__":
    main()
