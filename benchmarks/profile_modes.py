#!/usr/bin/env python3
"""Where a runner's time goes: µs per job and the shares of the main
parts, for the two main modes (per-job-commit and group commit), under
cProfile, in this process.

    .venv/bin/python benchmarks/profile_modes.py [--jobs 5000]
        [--modes per-job-commit,group-commit] [--top 25]

For each mode it drains `--jobs` no-op ``DoFooJob`` jobs once without
the profiler (the wall-clock µs per job, and the garbage collector's
share, from `gc.callbacks`), then once under cProfile, and prints the
share of the run's CPU time spent inside each part (cumulative time of
the functions of that part, outermost call only) and the top functions
by own time. cProfile slows Python code down more than C code: the
shares of Python parts are overstated (about 1.5x); the wall-clock
figure comes from the run without it.
"""

import argparse
import cProfile
import gc
import pstats
import sys
import time

import harness
import throughput

# part -> file path fragments of its code (the first match wins).
PARTS = [
    ("storm (ORM)", ("/storm/",)),
    ("psycopg2 + server wait", ("psycopg2", "{method 'execute' of",
                                "{method 'commit' of")),
    ("logging", ("/logging/", "jobs/logtail.py", "jobs/log.py")),
    ("transaction package", ("/transaction/",)),
    ("zope", ("/zope/",)),
    ("jobs", ("/jobs/",)),
]


class GCTimer:
    """Seconds spent in the garbage collector while installed."""

    def __init__(self):
        self.seconds = 0.0
        self.collections = 0
        self._started = None

    def __call__(self, phase, info):
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1
            self._started = None

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def shares(stats):
    """``{part: seconds}`` of own time per part, and the total."""
    own = {}
    total = 0.0
    for (path, _, name), (_, _, tottime, _, _) in stats.stats.items():
        where = "%s %s" % (path, name)
        total += tottime
        for part, fragments in PARTS:
            if any(fragment in where for fragment in fragments):
                own[part] = own.get(part, 0.0) + tottime
                break
        else:
            own["other (stdlib, builtins)"] = own.get(
                "other (stdlib, builtins)", 0.0) + tottime
    return own, total


def profile(mode, jobs, top):
    run = throughput.IN_PROCESS[mode]
    harness.load_jobs(jobs)
    with GCTimer() as gc_timer:
        seconds, _ = harness.timed(run)
    harness.emit(measure="profile", mode=mode, jobs=jobs,
                 us_per_job=round(seconds / jobs * 1e6, 1),
                 jobs_per_s=round(jobs / seconds),
                 gc_share=round(gc_timer.seconds / seconds, 3),
                 gc_collections=gc_timer.collections,
                 load=harness.load_average())
    harness.load_jobs(jobs)
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    own, total = shares(stats)
    print("# %s under cProfile: %.1f µs of CPU per job (own time)"
          % (mode, total / jobs * 1e6))
    for part, value in sorted(own.items(), key=lambda item: -item[1]):
        print("#   %-28s %5.1f%%  %6.1f µs/job"
              % (part, 100 * value / total, value / jobs * 1e6))
    stats.sort_stats("tottime").print_stats(top)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--modes", default="per-job-commit,group-commit")
    parser.add_argument("--top", type=int, default=25)
    options = parser.parse_args()
    harness.header("profile_modes")
    harness.fresh_database()
    harness.configure()
    for mode in options.modes.split(","):
        if mode not in throughput.IN_PROCESS:
            parser.error("unknown mode %r" % mode)
        profile(mode, options.jobs, options.top)


if __name__ == "__main__":
    sys.exit(main())
