#!/usr/bin/env python3
"""The client's work a job, in CPU instructions: a figure this shared,
drifting VM cannot blur.

    .venv/bin/python benchmarks/instructions.py [--modes group-commit]
        [--no-raw] [--small 1000] [--large 3000]

Wall-clock rates on this machine drift by a third from run to run, and a
change that saves a µs a job is lost in that. valgrind's callgrind counts
the instructions a process executes instead: the same count for the same
code and inputs, whatever else the machine does. For each framework mode
(`throughput.IN_PROCESS`) this drains `--small`, then `--large` no-op
``DoFooJob`` jobs in a process run under callgrind, and prints the
difference per job: the start-up, imports and the one-off work cancel
out. Unless ``--no-raw``, it does the same for `raw_ceiling.py` in each
shape the modes have (per job, group; its consumer processes counted
too), and prints each mode's ratio to the raw loop of its shape. The
server's work is not counted: this is the client's side only, where the
framework's own cost lies.

Each count takes a few seconds of callgrind per thousand jobs (Python runs
about 50 times slower under it). valgrind comes from the distribution
(Debian: ``apt-get install valgrind``).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import harness
import throughput

HERE = os.path.dirname(os.path.abspath(__file__))
# callgrind's summary line, one a process: "==pid== I   refs:      1,234".
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def callgrind(argv):
    """Instructions executed by `argv` and the processes it forks."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--trace-children=no"] + argv,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, JOBS_BENCH_DB=harness.DATABASE))
    if result.returncode:
        raise SystemExit("%s failed under valgrind: %s" % (
            " ".join(argv), result.stderr.strip().splitlines()[-1:]))
    counts = REFS.findall(result.stderr)
    if not counts:
        raise SystemExit("valgrind printed no instruction count")
    return sum(int(count.replace(",", "")) for count in counts)


def drain(mode, jobs):
    """In the child under callgrind: a fresh schema, `jobs` jobs, one
    drain in `mode`."""
    harness.fresh_database()
    harness.configure()
    harness.load_jobs(jobs)
    throughput.IN_PROCESS[mode]()


def framework(mode, jobs):
    return callgrind([sys.executable, os.path.abspath(__file__),
                      "--drain", mode, "--jobs", str(jobs)])


def raw(shape, jobs):
    harness.fresh_database()
    harness.configure()
    harness.load_jobs(jobs)
    harness.disconnect()
    return callgrind([sys.executable, os.path.join(HERE, "raw_ceiling.py"),
                      "--shape", shape, "--database", harness.DATABASE])


def shape_of(mode):
    """The raw loop's shape of a framework mode."""
    return "per-job" if mode in throughput.PER_JOB_SHAPED else "group"


def per_job(count, small, large):
    return round((count(large) - count(small)) / (large - small))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="group-commit")
    parser.add_argument("--no-raw", action="store_true",
                        help="leave out the raw loops")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3000)
    parser.add_argument("--drain", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.drain:
        return drain(options.drain, options.jobs)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install"
                     " valgrind)")
    if not 0 < options.small < options.large:
        parser.error("--small must be above 0 and below --large")
    modes = options.modes.split(",")
    for mode in modes:
        if mode not in throughput.IN_PROCESS:
            parser.error("unknown mode %r (one of: %s)" % (
                mode, ", ".join(sorted(throughput.IN_PROCESS))))
    harness.header("instructions")
    floors = {}
    shapes = {shape_of(mode) for mode in modes}
    for shape in sorted(shapes) if not options.no_raw else ():
        floors[shape] = per_job(lambda jobs: raw(shape, jobs),
                                options.small, options.large)
        print(json.dumps(dict(measure="instructions", mode="raw-%s" % shape,
                              per_job=floors[shape])))
    for mode in modes:
        count = per_job(lambda jobs: framework(mode, jobs), options.small,
                        options.large)
        line = dict(measure="instructions", mode=mode, per_job=count)
        if shape_of(mode) in floors:
            line["vs_raw_%s" % shape_of(mode)] = round(
                count / floors[shape_of(mode)], 2)
        print(json.dumps(line))


if __name__ == "__main__":
    sys.exit(main())
