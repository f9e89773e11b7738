#!/usr/bin/env python3
"""Enqueue and processing rates of no-op jobs, with the baselines measured
in the same run on the same PostgreSQL.

    .venv/bin/python benchmarks/throughput.py [--sizes 10000,100000] [--no-peers]

Modes:
  one-by-one      the cron default (batch_size 0, Launchpad's way): read
                  the ready ids, then per job take its lease, start it
                  (commit), run it and record the outcome (commit)
  per-job-commit  batch_size 1: claim one job per transaction, run it and
                  record its outcome in another: pgbench's two-transaction
                  shape below
  batch           claim 100 per statement, one commit per outcome
  group-commit    claim 200 per statement, 200 outcomes per commit
  worker-N        run_jobs.py --worker, N processes, group commit
  worker-per-job-N  the same, per-job-commit section (batch_size 1)

Baselines: pgbench's two-transaction claim/complete loop (the physical
limit of one commit per claim and per completion), and, when
benchmarks/peers/setup.sh has been run, Procrastinate and PgQueuer.
"""

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
import time

import harness  # noqa: F401 (sets sys.path)
import transaction

from jobs.log import DevNullLogger
from jobs.runner import JobRunner
from jobs.runners.batch import BatchRunner
from jobs.scripts.logger import formatter
from jobs.testing.foojob import DoFooJob, Foo

PEERS = os.path.join(harness.ROOT, "benchmarks", "peers")
PEERS_PYTHON = os.path.join(harness.ROOT, "benchmarks", ".venv-peers", "bin",
                            "python")


def enqueue_rates(figures):
    store = harness.get_store()
    harness.load_jobs(0)
    foo = store.find(Foo).one()
    single = 2000

    def one_by_one():
        for _ in range(single):
            DoFooJob.create(foo)
            transaction.commit()

    seconds, _ = harness.timed(one_by_one)
    figures["enqueue_single"] = single / seconds
    harness.emit(measure="enqueue", mode="one job per commit", jobs=single,
                 seconds=round(seconds, 3), jobs_per_s=round(single / seconds))
    count = 10000
    foo = store.find(Foo).one()

    def batch():
        for index in range(count):
            DoFooJob.create(foo)
            if index % 100 == 99:
                transaction.commit()
        transaction.commit()

    seconds, _ = harness.timed(batch)
    figures["enqueue_batch"] = count / seconds
    harness.emit(measure="enqueue", mode="create() x 100 per commit",
                 jobs=count, seconds=round(seconds, 3),
                 jobs_per_s=round(count / seconds))
    # The foreign-key checks' cached plans were made on an empty table:
    # ANALYZE first, or each check scans the whole table (measured 20x).
    harness.analyze()
    seconds, _ = harness.timed(
        lambda: (harness.make_many_foo_jobs(store, store.find(Foo).one(),
                                            count), transaction.commit()))
    figures["enqueue_bulk"] = count / seconds
    harness.emit(measure="enqueue", mode="bulk SQL (make_many_foo_jobs)",
                 jobs=count, seconds=round(seconds, 3),
                 jobs_per_s=round(count / seconds))


def in_process(make_runner):
    def run():
        runner = make_runner()
        (runner.runAll if hasattr(runner, "runAll") else runner.run)()
    return run


MODES = {
    "one-by-one": in_process(lambda: JobRunner.fromReady(
        DoFooJob, DevNullLogger(), keep_jobs=False)),
    "per-job-commit": in_process(lambda: BatchRunner(
        DoFooJob, DevNullLogger(), batch_size=1)),
    "batch": in_process(lambda: BatchRunner(
        DoFooJob, DevNullLogger(), batch_size=100)),
    "group-commit": in_process(lambda: BatchRunner(
        DoFooJob, DevNullLogger(), batch_size=200, group_commit=200)),
    # The same at run_jobs.py's default verbosity: two INFO lines a job,
    # formatted (to /dev/null) as run_jobs.py formats them.
    "group-commit-info": in_process(lambda: BatchRunner(
        DoFooJob, info_logger(), batch_size=200, group_commit=200)),
}


def info_logger():
    """A logger at INFO, formatted like run_jobs.py's, into /dev/null."""
    logger = logging.getLogger("benchmark-info")
    if not logger.handlers:
        handler = logging.StreamHandler(open(os.devnull, "w"))
        handler.setFormatter(formatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


WORKER_SECTIONS = {"worker": "bench_group", "worker-per-job": "bench_per_job"}


def run_workers(section, processes, count):
    """Start `processes` workers on a loaded queue; time until it drains."""
    env = dict(os.environ)
    started = time.perf_counter()
    workers = [subprocess.Popen(
        harness.run_jobs_command("--worker", "-q", section), env=env,
        stderr=subprocess.DEVNULL) for _ in range(processes)]
    try:
        while harness.count_status(2) < count:
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker exited early")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)


def processing(sizes, modes, figures):
    for size in sizes:
        for mode in modes:
            harness.load_jobs(size)
            if mode.startswith("worker"):
                kind, processes = mode.rsplit("-", 1)
                seconds = run_workers(WORKER_SECTIONS[kind], int(processes),
                                      size)
            else:
                seconds, _ = harness.timed(MODES[mode])
            done = harness.count_status(2)
            assert done == size, "%s: %d of %d completed" % (mode, done, size)
            figures[(mode, size)] = size / seconds
            harness.emit(measure="process", mode=mode, jobs=size,
                         seconds=round(seconds, 3),
                         jobs_per_s=round(size / seconds))


PGBENCH_SCRIPT = """\
BEGIN;
UPDATE pgb_job SET status = 1 WHERE id = (SELECT id FROM pgb_job WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id AS job_id \\gset
COMMIT;
UPDATE pgb_job SET status = 2 WHERE id = :job_id;
"""


def pgbench(count, figures):
    """The physical limit: claim (1 transaction) + complete (1 transaction)."""
    results = {}
    for clients in (1, 2):
        connection = harness.admin()
        connection.close()
        db = harness.psycopg2.connect("dbname=%s" % harness.DATABASE)
        db.autocommit = True
        cursor = db.cursor()
        cursor.execute("DROP TABLE IF EXISTS pgb_job")
        cursor.execute("CREATE TABLE pgb_job (id serial PRIMARY KEY,"
                       " status integer NOT NULL DEFAULT 0)")
        cursor.execute("CREATE INDEX ON pgb_job (id) WHERE status = 0")
        cursor.execute("INSERT INTO pgb_job (status) SELECT 0 FROM"
                       " generate_series(1, %s)", (count,))
        cursor.execute("VACUUM ANALYZE pgb_job")
        db.close()
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write(PGBENCH_SCRIPT)
            script.flush()
            output = subprocess.run(
                ["pgbench", "-n", "-c", str(clients), "-j", str(clients),
                 "-t", str(count // clients), "-f", script.name,
                 harness.DATABASE], capture_output=True, text=True).stdout
        tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
        results[clients] = tps
        harness.emit(measure="process", mode="pgbench claim+complete",
                     clients=clients, jobs=count, jobs_per_s=round(tps))
    figures["pgbench"] = results


def peers(count, figures):
    if not os.path.exists(PEERS_PYTHON):
        print("# peers: not installed (run benchmarks/peers/setup.sh)")
        return
    for name in ("procrastinate", "pgqueuer"):
        script = os.path.join(PEERS, "%s_bench.py" % name)
        output = subprocess.run(
            [PEERS_PYTHON, script, "--jobs", str(count)],
            capture_output=True, text=True, timeout=1800)
        best = 0
        for line in output.stdout.splitlines():
            if not line.startswith("{"):
                continue
            print(line)
            record = json.loads(line)
            if record.get("measure") == "process":
                best = max(best, record["jobs_per_s"])
        if output.returncode:
            print("# %s failed: %s" % (name, output.stderr[-500:]))
        figures[name] = best


def ratios(figures, sizes):
    limit_1 = figures.get("pgbench", {}).get(1)
    limit_2 = figures.get("pgbench", {}).get(2)
    print("# ratios (same run)")
    for size in sizes:
        for key, rate in figures.items():
            if not isinstance(key, tuple) or key[1] != size:
                continue
            mode, n = key
            parts = ["%s %d jobs: %.0f jobs/s" % (mode, n, rate)]
            if limit_1:
                parts.append("%.2fx pgbench(1 client)" % (rate / limit_1))
            if limit_2:
                parts.append("%.2fx pgbench(2 clients)" % (rate / limit_2))
            for peer in ("procrastinate", "pgqueuer"):
                if figures.get(peer):
                    parts.append("%.2fx %s best" % (rate / figures[peer], peer))
            print("#   " + "; ".join(parts))
        targets(figures, size)


def clients(mode):
    """How many processes a mode runs (the pgbench clients to compare)."""
    return int(mode.rsplit("-", 1)[1]) if mode.startswith("worker") else 1


def targets(figures, size):
    """Issue 4's throughput targets, from this run's figures."""
    pgbench = figures.get("pgbench", {})
    per_job = {mode: rate for (mode, n), rate in _rates(figures, size)
               if mode == "per-job-commit" or mode.startswith("worker-per-job")}
    grouped = {mode: rate for (mode, n), rate in _rates(figures, size)
               if mode in ("batch", "group-commit")
               or (mode.startswith("worker-") and "per-job" not in mode)}
    print("# targets, %d jobs" % size)
    if per_job and pgbench:
        for mode, rate in per_job.items():
            limit = pgbench.get(clients(mode))
            if limit:
                print("#   %s: %.2fx pgbench with %d client(s) (target 0.70x)"
                      % (mode, rate / limit, clients(mode)))
    if per_job and figures.get("procrastinate"):
        mode, rate = max(per_job.items(), key=lambda item: item[1])
        print("#   per-job-commit best (%s) %.0f jobs/s: %.2fx Procrastinate's"
              " best (target 2x)" % (mode, rate, rate / figures["procrastinate"]))
    if grouped and figures.get("pgqueuer"):
        mode, rate = max(grouped.items(), key=lambda item: item[1])
        print("#   batch/group best (%s) %.0f jobs/s: %.2fx PgQueuer's best"
              " (target 1x)" % (mode, rate, rate / figures["pgqueuer"]))


def _rates(figures, size):
    return [(key, rate) for key, rate in figures.items()
            if isinstance(key, tuple) and key[1] == size]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--modes", default=",".join(
        list(MODES) + ["worker-per-job-1", "worker-per-job-2", "worker-1",
                       "worker-2"]))
    parser.add_argument("--no-peers", action="store_true")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    modes = options.modes.split(",")
    harness.header("throughput")
    harness.fresh_database()
    harness.configure()
    figures = {}
    enqueue_rates(figures)
    processing(sizes, modes, figures)
    pgbench(min(sizes), figures)
    if not options.no_peers:
        peers(min(sizes), figures)
    ratios(figures, sizes)


if __name__ == "__main__":
    main()
