#!/usr/bin/env python3
"""run_jobs.py start-up: wall time of a run on an empty queue (median of
10), with the interpreter's own start-up measured in the same run as the
baseline. The package's bytecode is written first, as installing it
writes it: under ``PYTHONDONTWRITEBYTECODE`` a checkout would otherwise
compile every module in every command.

    .venv/bin/python benchmarks/startup.py [--runs 10]
"""

import argparse
import os
import subprocess
import sys
import time

import harness


def wall(command, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL,
                       env=dict(os.environ))
        times.append(time.perf_counter() - started)
    return harness.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    harness.header("startup")
    harness.fresh_database()
    harness.configure()
    harness.load_jobs(0)
    harness.compile_bytecode()  # as an installed package has it
    python = wall([sys.executable, "-c", "pass"], options.runs)
    imports = wall([sys.executable, "-c", "import jobs.runner"], options.runs)
    run_jobs = wall(harness.run_jobs_command("-q", "bench"), options.runs)
    harness.emit(measure="startup", mode="python -c pass",
                 median_s=round(python, 3))
    harness.emit(measure="startup", mode="python -c 'import jobs.runner'",
                 median_s=round(imports, 3))
    harness.emit(measure="startup", mode="run_jobs.py bench (empty queue)",
                 median_s=round(run_jobs, 3), runs=options.runs)
    print("# ratio: run_jobs.py is %.1fx a bare interpreter start;"
          " targets: < 0.5 s (issue 4), < 0.2 s (held by issue 15)"
          % (run_jobs / python))


if __name__ == "__main__":
    main()
