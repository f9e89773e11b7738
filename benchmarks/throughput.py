#!/usr/bin/env python3
"""Processing rates of no-op jobs, with the baselines measured in the same
run on the same PostgreSQL over the same Unix socket, as medians of
interleaved repetitions; and the enqueue rates.

    .venv/bin/python benchmarks/throughput.py [--sizes 10000] [--repeat 3]
        [--modes MODE,...] [--references MODE,...] [--no-peers] [--no-enqueue]

Each round runs every mode once, in order (A, B, C, ..., then A, B, C
again): a drift of the machine's speed touches every mode alike. Each
figure is the median of the rounds; every measurement prints the load
average (1/5/15 min) at its end, since this machine is shared (the
benchmark's own processes count in it too: about 1 for one process, 2 for
two), and the share of the CPU time the hypervisor gave to other guests
while it ran, its loading included (``steal``, from /proc/stat: on a
shared VM a round that lost a tenth of its CPU is slower for that, and
the load average does not show it). Ratios are taken within the run: the
ratio of the medians, and in brackets the ratio within each round.

Framework modes (--modes; default all):
  one-by-one        the cron default (batch_size 0, Launchpad's way): read
                    the ready ids, then per job take its lease, start it
                    (commit), run it and record the outcome (commit)
  per-job-commit    batch_size 1: claim one job per statement, its outcome
                    committed on its own (the next claim rides on it)
  batch             claim 100 per statement, one commit per outcome
  group-commit      claim 200 per statement, 200 outcomes per commit
  group-commit-info the same with a logger at INFO formatted as
                    run_jobs.py formats, into /dev/null
  worker-N          run_jobs.py --worker -q, N processes, group commit
  worker-per-job-N  the same on the per-job-commit section (batch_size 1)
  worker-info-N     worker-N at run_jobs.py's default verbosity (INFO, no
                    -q), its log to /dev/null
Workers are started on the loaded queue while a lock on the job table
holds their first claim; the clock starts when every worker waits on it
and the lock is released (start-up is not throughput: the peers' harness
excludes it too). ``seconds_with_startup`` is printed as well.

Reference modes (--references; default all, peers only when installed
and without --no-peers):
  pgbench-N         pgbench's claim + complete, 2 transactions a job, N
                    clients
  raw-per-job-N     raw_ceiling.py --shape per-job, N processes: the
                    framework's per-job statements, prepared, no framework
  raw-group-N       raw_ceiling.py --shape group, N processes
  pgqueuer-bB-N     PgQueuer, dequeue batch B, N processes (B: 100, 200)
  procrastinate-cC-N  Procrastinate, concurrency C, N processes (C: 4)
"PgQueuer best" and "Procrastinate best" are the best median of their
configurations in this run. Each framework mode is also shown against its
raw ceiling (same shape, same number of processes).
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

import baselines
import harness  # noqa: F401 (sets sys.path)
import report
import transaction

from jobs.log import DevNullLogger
from jobs.runner import JobRunner
from jobs.scripts.logger import formatter
from jobs.testing.foojob import DoFooJob, Foo


def enqueue_rates():
    store = harness.get_store()
    harness.load_jobs(0)
    foo = store.find(Foo).one()
    single = 2000

    def one_by_one():
        for _ in range(single):
            DoFooJob.create(foo)
            transaction.commit()

    seconds, _ = harness.timed(one_by_one)
    harness.emit(measure="enqueue", mode="one job per commit", jobs=single,
                 seconds=round(seconds, 3), jobs_per_s=round(single / seconds),
                 load=harness.load_average())
    count = 10000
    foo = store.find(Foo).one()

    def batch():
        for index in range(count):
            DoFooJob.create(foo)
            if index % 100 == 99:
                transaction.commit()
        transaction.commit()

    seconds, _ = harness.timed(batch)
    harness.emit(measure="enqueue", mode="create() x 100 per commit",
                 jobs=count, seconds=round(seconds, 3),
                 jobs_per_s=round(count / seconds),
                 load=harness.load_average())
    # The foreign-key checks' cached plans were made on an empty table:
    # ANALYZE first, or each check scans the whole table (measured 20x).
    harness.analyze()
    seconds, _ = harness.timed(
        lambda: (harness.make_many_foo_jobs(store, store.find(Foo).one(),
                                            count), transaction.commit()))
    harness.emit(measure="enqueue", mode="bulk SQL (make_many_foo_jobs)",
                 jobs=count, seconds=round(seconds, 3),
                 jobs_per_s=round(count / seconds),
                 load=harness.load_average())


def info_logger():
    """A logger at INFO, formatted like run_jobs.py's, into /dev/null."""
    logger = logging.getLogger("benchmark-info")
    if not logger.handlers:
        try:  # run_jobs.py's handler (`configure_logging`)
            from jobs.scripts.logger import LineStreamHandler
        except ImportError:  # the code before it
            LineStreamHandler = logging.StreamHandler
        handler = LineStreamHandler(open(os.devnull, "w"))
        handler.setFormatter(formatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def in_process(batch_size, group_commit=0, logger=None):
    """A function that drains the queue in this process: `batch_size`
    jobs claimed per statement, `group_commit` outcomes per commit."""
    logger = logger or DevNullLogger()
    try:
        from jobs.sections import RunSettings
    except ImportError:
        # The code before the runner-core redesign (issue 12), for runs
        # that compare before and after in one session.
        from jobs.runners.batch import BatchRunner
        if not batch_size:
            return lambda: JobRunner.fromReady(
                DoFooJob, logger, keep_jobs=False).runAll()
        return lambda: BatchRunner(DoFooJob, logger, batch_size=batch_size,
                                   group_commit=group_commit).run()
    settings = RunSettings(batch_size=batch_size or 10,
                           group_commit=group_commit)
    return lambda: JobRunner(logger=logger, source=DoFooJob,
                             settings=settings).runAll()


IN_PROCESS = {
    # run_jobs.py's default: the one-by-one leases before issue 12, a
    # burst of 10-job claims since.
    "one-by-one": in_process(0),
    "per-job-commit": in_process(1),
    "batch": in_process(100),
    "group-commit": in_process(200, 200),
    # The same at INFO, formatted as run_jobs.py formats its lines.
    "group-commit-info": in_process(200, 200, info_logger()),
}
# The per-job-commit-shaped modes; every other framework mode is a group.
PER_JOB_SHAPED = ("one-by-one", "per-job-commit", "batch", "worker-per-job")
# worker family -> (section, quiet)
WORKERS = {"worker": ("bench_group", True),
           "worker-per-job": ("bench_per_job", True),
           "worker-info": ("bench_group", False)}


def drained(cursor):
    cursor.execute("SELECT NOT EXISTS (SELECT 1 FROM job WHERE status IN"
                   " (0, 1))")
    return cursor.fetchone()[0]


def waiting_on_gate(cursor):
    cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND"
                   " relation = 'job'::regclass")
    return cursor.fetchone()[0]


def run_workers(section, processes, count, quiet=True):
    """Start `processes` workers on the loaded queue, their first claim
    held by a lock on the job table; release it and time until the queue
    is drained. Return ``(seconds, seconds_with_startup)``."""
    gate = harness.psycopg2.connect(dbname=harness.DATABASE)
    watch = harness.psycopg2.connect(dbname=harness.DATABASE)
    watch.autocommit = True
    cursor = watch.cursor()
    gate.cursor().execute("LOCK TABLE job IN SHARE ROW EXCLUSIVE MODE")
    launched = time.perf_counter()
    command = harness.run_jobs_command(
        "--worker", *(["-q"] if quiet else []), section)
    workers = [subprocess.Popen(command, env=dict(os.environ),
                                stderr=subprocess.DEVNULL)
               for _ in range(processes)]
    try:
        deadline = time.monotonic() + 60
        while waiting_on_gate(cursor) < processes:
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker exited before its first claim")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not reach their first"
                                   " claim within 60 s")
            time.sleep(0.01)
        started = time.perf_counter()
        gate.rollback()
        while not drained(cursor):
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker exited early")
            time.sleep(0.01)
        finished = time.perf_counter()
        return finished - started, finished - launched
    finally:
        gate.close()
        watch.close()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)


class Mode:
    """One line of the benchmark: what it runs and what it compares to.

    :ivar kind: "framework", "pgbench", "raw", "pgqueuer" or
        "procrastinate".
    :ivar processes: processes (pgbench: clients) it runs.
    :ivar shape: "per-job" or "group" (framework and raw modes).
    """

    def __init__(self, name):
        self.name = name
        self.shape = None
        self.processes = 1
        self.extra = {}
        family, _, last = name.rpartition("-")
        if name in IN_PROCESS:
            self.kind = "framework"
        elif family in WORKERS and last.isdigit():
            self.kind, self.family = "framework", family
            self.processes = int(last)
        elif family == "pgbench" and last.isdigit():
            self.kind, self.processes = "pgbench", int(last)
        elif family in ("raw-per-job", "raw-group") and last.isdigit():
            self.kind, self.processes = "raw", int(last)
            self.shape = family[len("raw-"):]
        elif (family.startswith("pgqueuer-b") and last.isdigit()
              and family[len("pgqueuer-b"):].isdigit()):
            self.kind, self.processes = "pgqueuer", int(last)
            self.extra = {"batch_size": int(family[len("pgqueuer-b"):])}
        elif (family.startswith("procrastinate-c") and last.isdigit()
              and family[len("procrastinate-c"):].isdigit()):
            self.kind, self.processes = "procrastinate", int(last)
            self.extra = {"concurrency": int(family[len("procrastinate-c"):])}
        else:
            raise ValueError(name)
        if self.processes < 1:
            raise ValueError(name)
        if self.kind == "framework":
            self.shape = ("per-job" if name.rstrip("-0123456789")
                          in PER_JOB_SHAPED else "group")

    @property
    def ceiling(self):
        """The name of this framework mode's raw ceiling."""
        if self.kind != "framework":
            return None
        return "raw-%s-%d" % (self.shape, self.processes)

    def run(self, size):
        """Drain `size` jobs once; return ``(jobs/s, extra figures)``."""
        if self.kind == "pgbench":
            return baselines.pgbench(size, self.processes), {}
        if self.kind == "raw":
            return baselines.raw(size, self.shape, self.processes), {}
        if self.kind in ("pgqueuer", "procrastinate"):
            return baselines.peer(size, self.kind, self.processes,
                                  **self.extra), {}
        harness.load_jobs(size)
        extra = {}
        if self.name in IN_PROCESS:
            seconds, _ = harness.timed(IN_PROCESS[self.name])
        else:
            section, quiet = WORKERS[self.family]
            seconds, with_startup = run_workers(section, self.processes,
                                                size, quiet)
            extra["seconds_with_startup"] = round(with_startup, 3)
        done = harness.count_status(2)
        if done != size:
            raise RuntimeError("%d of %d completed" % (done, size))
        extra["seconds"] = round(seconds, 3)
        return size / seconds, extra


FRAMEWORK_MODES = (list(IN_PROCESS) + [
    "worker-per-job-1", "worker-per-job-2", "worker-1", "worker-2",
    "worker-info-2"])
REFERENCE_MODES = ["pgbench-1", "pgbench-2", "raw-per-job-1",
                   "raw-per-job-2", "raw-group-1", "raw-group-2"]
PEER_MODES = ["pgqueuer-b100-1", "pgqueuer-b200-1", "pgqueuer-b100-2",
              "pgqueuer-b200-2", "procrastinate-c4-1", "procrastinate-c4-2"]


def measure(sizes, modes, repeat):
    """Run every mode once per round, `repeat` rounds, for each size;
    return ``{size: {mode name: [(jobs/s or None, load average, CPU
    steal share or None)]}}``."""
    results = {}
    for size in sizes:
        results[size] = {mode.name: [] for mode in modes}
        for round_ in range(1, repeat + 1):
            for mode in modes:
                before = harness.cpu_times()
                try:
                    rate, extra = mode.run(size)
                except Exception as e:
                    rate, extra = None, {"error": " ".join(str(e).split())}
                    transaction.abort()
                load = harness.load_average()
                steal = harness.steal_share(before, harness.cpu_times())
                results[size][mode.name].append((rate, load, steal))
                harness.emit(measure="process", mode=mode.name, jobs=size,
                             round=round_,
                             jobs_per_s=rate and round(rate), load=load,
                             steal=steal, **extra)
    return results


def parse_modes(parser, text):
    modes = []
    for name in filter(None, text.split(",")):
        try:
            modes.append(Mode(name))
        except ValueError:
            parser.error("unknown mode %r (see --help)" % name)
    return modes


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--sizes", default="10000",
                        help="jobs per drain, comma-separated")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved rounds; figures are their medians")
    parser.add_argument("--modes", default=",".join(FRAMEWORK_MODES),
                        help="framework modes, comma-separated")
    parser.add_argument("--references", default=None,
                        help="reference modes, comma-separated (default: all;"
                        " 'none' for none)")
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out PgQueuer and Procrastinate")
    parser.add_argument("--no-enqueue", action="store_true",
                        help="skip the enqueue rates")
    options = parser.parse_args()
    try:
        sizes = [int(size) for size in options.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes whole numbers, comma-separated")
    if min(sizes) < 2 or options.repeat < 1:
        parser.error("--sizes must be at least 2 and --repeat at least 1")
    references = options.references
    if references is None:
        references = REFERENCE_MODES
        if not options.no_peers:
            if baselines.peers_installed():
                references = references + PEER_MODES
            else:
                print("# peers: not installed (run benchmarks/peers/setup.sh)")
        references = ",".join(references)
    elif references == "none":
        references = ""
    modes = parse_modes(parser, options.modes) + parse_modes(
        parser, references)
    if options.no_peers:
        modes = [m for m in modes
                 if m.kind not in ("pgqueuer", "procrastinate")]
    harness.header("throughput")
    harness.fresh_database()
    harness.configure()
    if not options.no_enqueue:
        enqueue_rates()
    results = measure(sizes, modes, options.repeat)
    for size in sizes:
        report.summary(size, modes, results[size], options.repeat)


if __name__ == "__main__":
    sys.exit(main())
