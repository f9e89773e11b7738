#!/usr/bin/env python3
"""Worker memory: resident set size of one worker after 1k and after 100k
jobs (group commit section). The 1k figure is the baseline.

    .venv/bin/python benchmarks/memory.py [--jobs 100000]
"""

import argparse
import os
import signal
import subprocess
import time

import harness


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def drain(expected):
    while harness.count_status(2) < expected:
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=100000)
    options = parser.parse_args()
    harness.header("memory")
    harness.fresh_database()
    harness.configure()
    harness.load_jobs(options.first)
    worker = subprocess.Popen(harness.run_jobs_command(
        "--worker", "-q", "bench_group"), env=dict(os.environ),
        stderr=subprocess.DEVNULL)
    try:
        drain(options.first)
        after_first = rss_kib(worker.pid)
        store = harness.get_store()
        foo = store.find(harness.Foo).one()
        harness.make_many_foo_jobs(store, foo, options.jobs - options.first)
        harness.transaction.commit()
        drain(options.jobs)
        after_all = rss_kib(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    harness.emit(measure="worker RSS", jobs=options.first,
                 rss_mib=round(after_first / 1024, 1))
    harness.emit(measure="worker RSS", jobs=options.jobs,
                 rss_mib=round(after_all / 1024, 1))
    print("# growth from %d to %d jobs: %.1f MiB (target < 20 MB)" % (
        options.first, options.jobs, (after_all - after_first) / 1024))


if __name__ == "__main__":
    main()
