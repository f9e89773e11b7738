#!/usr/bin/env python3
"""A million jobs (issue 14 item 6; issue 4's flat ready query): the
operator's commands and the claim with a big job table.

    .venv/bin/python benchmarks/scale.py [--big 1000000] [--small 10000]
        [--ready 300] [--timeout 120] [--runs 3] [--scenarios NAME,...]

Scenarios (--scenarios; default all), each loaded with bulk SQL
(`harness.bulk_load`) and ANALYZEd:

  small-finished  1,000 ready jobs among --small finished ones
  big-finished    1,000 ready jobs among --big finished ones
  big-waiting     --big ready (WAITING) jobs
  big-future      --big jobs scheduled a day ahead plus --ready ready ones
  idle-worker     an idle ``--worker`` over an empty queue (the baseline)
  idle-processes  an idle ``--worker --processes N`` (--processes, 4),
                  after running 2N jobs during its warm-up

Figures, each printed beside its bound and the load average:

- ``jobs status`` and ``jobs list --orphaned`` (big-finished, big-waiting):
  the real command (the ``jobs`` script next to this interpreter, with
  the package's bytecode written first, as an installation has it) timed
  as a whole, and its SQL alone (`cli_sql.py`: the same command in-process
  with a tracer timing each statement); the median of --runs. Bound:
  under 1 s.
- the ready query (what ``iterReady`` runs: the source's first 100 ready
  ids) and a claim of 100, rolled back (and in big-future a claim of 1):
  the median of 50 runs (3 when one run takes over 0.1 s); and a limited
  claim of 100 (``max_running`` 500, ``max_running_per_key`` 2:
  `jobs.model.limits`), which must stay as flat. Bound for a claim in
  big-future: under 5 ms; the ready query and the claim must stay
  within 1.5x from small-finished to big-finished.

- idle workers (issue 14 item 2): the CPU time (user + system, from
  /proc) of the worker and every process below it, live or reaped, over
  --idle-seconds (60) after a --warm-up (10 s) that leaves its start-up
  out, and its RSS (with its children's) at the end. Bound for
  ``--processes``: under 0.5 s of CPU a minute.

Every timed command or query gets --timeout seconds. A command still
running then is killed, and its backends are cancelled on the server
(``pg_cancel_backend``, then ``pg_terminate_backend``), found by the
application name the benchmark gives them; an in-process query runs under
``statement_timeout``. Such a figure reads "over N s".
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import harness
import transaction

from jobs.model.limits import Limits
from jobs.testing.foojob import DoFooJob

CLI_BOUND_S = 1.0
CLAIM_BOUND_MS = 5.0
FLAT_RATIO = 1.5
IDLE_CPU_BOUND_S = 0.5
SCENARIOS = ("small-finished", "big-finished", "big-waiting", "big-future",
             "idle-worker", "idle-processes")


class TimedOut(Exception):
    """A timed command or query ran past the timeout."""


# Commands: the whole process and its SQL alone.

JOBS = os.path.join(os.path.dirname(sys.executable), "jobs")
CLI_SQL = os.path.join(harness.ROOT, "benchmarks", "cli_sql.py")
_runs = 0


def cancel_backends(application_name):
    """Cancel, then terminate, the queries of `application_name`'s
    backends (a killed client leaves its backend running)."""
    admin = harness.admin()
    cursor = admin.cursor()
    try:
        for action in ("pg_cancel_backend", "pg_terminate_backend"):
            cursor.execute(
                "SELECT %s(pid) FROM pg_stat_activity WHERE"
                " application_name = %%s AND state <> 'idle'" % action,
                (application_name,))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE"
                               " application_name = %s AND state <> 'idle'",
                               (application_name,))
                if not cursor.fetchone()[0]:
                    return
                time.sleep(0.1)
    finally:
        admin.close()


def run_command(command, timeout):
    """Run `command` with a fresh application name; return ``(seconds,
    stdout)``.

    :raises TimedOut: after killing it and cancelling its backends.
    """
    global _runs
    _runs += 1
    name = "jobs-scale-bench-%d-%d" % (os.getpid(), _runs)
    env = dict(os.environ, PGAPPNAME=name)
    started = time.perf_counter()
    try:
        result = subprocess.run(command, env=env, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        cancel_backends(name)
        raise TimedOut() from None
    seconds = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError("%s: exit %d: %s" % (
            " ".join(command), result.returncode, result.stderr[-500:]))
    return seconds, result.stdout


def time_command(argv, timeout, runs):
    """``(whole seconds, SQL seconds, slowest statement)``, medians of
    `runs`; a figure is None when it ran past `timeout`."""
    whole, sql, slowest = [], [], None
    for _ in range(runs):
        try:
            whole.append(run_command([JOBS] + argv, timeout)[0])
        except TimedOut:
            whole = None
            break
    for _ in range(runs):
        try:
            _, output = run_command([sys.executable, CLI_SQL] + argv, timeout)
        except TimedOut:
            sql = None
            break
        record = json.loads(output.splitlines()[-1])
        if record["exit"]:
            raise RuntimeError("jobs %s: exit %s" % (" ".join(argv),
                                                     record["exit"]))
        sql.append(record["sql_s"])
        slowest = record["statements"][0] if record["statements"] else None
    return (whole and harness.median(whole), sql and harness.median(sql),
            slowest)


# Queries in this process, under statement_timeout.

def ready_query():
    # What iterReady runs: the first 100 ready ids of the source.
    DoFooJob.readyJobIds(100)


def claim(limit, limits=None):
    def claim():
        # Claim and roll back: the queue stays as it was.
        DoFooJob.claimReady(limit, limits=limits)
    return claim


# A limited section's claim (jobs.model.limits): the running jobs counted
# and the candidates ranked per key inside the claim statement.
LIMITS = Limits("bench", max_running=500, max_running_per_key=2)


def set_statement_timeout(value):
    store = harness.get_store()
    store.execute("SET statement_timeout = %s" % value)
    transaction.commit()


def once(function):
    started = time.perf_counter()
    try:
        function()
    except Exception as e:
        if getattr(e, "pgcode", None) == "57014":  # query_canceled
            raise TimedOut() from None
        raise
    finally:
        transaction.abort()
    return time.perf_counter() - started


def median_ms(function, timeout, runs=50):
    """The median of `runs` runs in ms (3 runs when one takes over 0.1 s);
    None when a run exceeds `timeout` (the server cancels it)."""
    set_statement_timeout(int(timeout * 1000))
    try:
        first = once(function)
        if first > 0.1:
            runs = 3
        times = [first] + [once(function) for _ in range(runs - 1)]
        return harness.median(times) * 1000
    except TimedOut:
        return None
    finally:
        set_statement_timeout("DEFAULT")


# Idle workers: CPU and memory of a process tree, from /proc.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """``(ppid, own CPU s, reaped children's CPU s, rss KiB)`` of `pid`,
    or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/status" % pid) as f:
            rss = next((int(line.split()[1]) for line in f
                        if line.startswith("VmRSS:")), 0)
    except (OSError, StopIteration):
        return None
    # Fields after the name: state ppid ... utime(12) stime(13)
    # cutime(14) cstime(15), counted from 0 after ")".
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return ppid, own, reaped, rss


def tree_usage(root):
    """``(CPU seconds, RSS MiB, processes)`` of `root` and every live
    process below it; the CPU includes the children they have reaped."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                stats[int(name)] = stat
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, stat in stats.items():
            if stat[0] == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    members &= set(stats)
    cpu = sum(stats[pid][1] + stats[pid][2] for pid in members)
    rss = sum(stats[pid][3] for pid in members) / 1024
    return cpu, rss, len(members)


def idle_worker(options, processes):
    """``(CPU s per minute, RSS MiB, processes)`` of an idle worker."""
    argv = ["--worker", "-q"]
    if processes:
        argv += ["--processes", str(processes)]
    worker = subprocess.Popen(harness.run_jobs_command(*argv, "bench"),
                              env=dict(os.environ),
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(options.warm_up)
        before, _, _ = tree_usage(worker.pid)
        time.sleep(options.idle_seconds)
        after, rss, count = tree_usage(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    return (after - before) * 60 / options.idle_seconds, rss, count


def run_idle(scenario, options):
    processes = options.processes if scenario == "idle-processes" else 0
    # A few jobs first, run during the warm-up: the pool's children are
    # then started, and the worker idles with them.
    harness.bulk_load([(2 * processes, "waiting")] if processes else [])
    cpu, rss, count = idle_worker(options, processes)
    bound = IDLE_CPU_BOUND_S if processes else None
    return [figure(scenario, "CPU a minute (%d processes)" % count, cpu, "s",
                   bound, idle_seconds=options.idle_seconds),
            figure(scenario, "RSS of the worker and its children", rss,
                   "MiB")]


# Scenarios.

def load(scenario, options):
    big, small = options.big, options.small
    harness.bulk_load({
        "small-finished": [(small, "finished"), (1000, "waiting")],
        "big-finished": [(big, "finished"), (1000, "waiting")],
        "big-waiting": [(big, "waiting")],
        "big-future": [(big, "future"), (options.ready, "waiting")],
    }[scenario])


def figure(scenario, what, value, unit, bound=None, timeout=None, **extra):
    """Emit one figure; return it for the summary."""
    if value is None:
        text = "over %s s" % timeout
    elif unit == "s":
        text = "%.3f s" % value
    elif unit == "MiB":
        text = "%.1f MiB" % value
    else:
        text = "%.3f ms" % value
    met = None if bound is None else (value is not None and value < bound)
    harness.emit(measure="scale", scenario=scenario, what=what,
                 value=None if value is None else round(value, 4), unit=unit,
                 over_timeout_s=timeout if value is None else None,
                 bound=bound, met=met, load=harness.load_average(), **extra)
    return scenario, what, text, bound, unit, met, value


def run_scenario(scenario, options):
    if scenario.startswith("idle-"):
        return run_idle(scenario, options)
    rows = []
    load(scenario, options)
    if scenario in ("big-finished", "big-waiting"):
        for argv in (["status"], ["list", "--orphaned"]):
            whole, sql, slowest = time_command(argv, options.timeout,
                                               options.runs)
            label = "jobs " + " ".join(argv)
            rows.append(figure(scenario, label + " (whole command)", whole,
                               "s", CLI_BOUND_S, options.timeout))
            rows.append(figure(scenario, label + " (SQL alone)", sql, "s",
                               CLI_BOUND_S, options.timeout,
                               slowest_statement=slowest))
    future = scenario == "big-future"
    rows.append(figure(scenario, "ready query", median_ms(
        ready_query, options.timeout), "ms", timeout=options.timeout))
    if future:
        rows.append(figure(scenario, "claim 1", median_ms(
            claim(1), options.timeout), "ms", CLAIM_BOUND_MS,
            options.timeout))
    rows.append(figure(scenario, "claim 100", median_ms(
        claim(100), options.timeout), "ms",
        CLAIM_BOUND_MS if future else None, options.timeout))
    rows.append(figure(scenario, "limited claim 100", median_ms(
        claim(100, LIMITS), options.timeout), "ms", timeout=options.timeout))
    return rows


def print_summary(rows, options):
    print()
    print("| scenario | figure | measured | bound | |")
    print("|---|---|---|---|---|")
    for scenario, what, text, bound, unit, met, _ in rows:
        print("| %s | %s | %s | %s | %s |" % (
            scenario, what, text,
            "" if bound is None else "< %s %s" % (bound, unit),
            "" if met is None else "met" if met else "missed"))
    values = {(row[0], row[1]): row[-1] for row in rows}
    for what in ("ready query", "claim 100", "limited claim 100"):
        small = values.get(("small-finished", what))
        big = values.get(("big-finished", what))
        if small and big:
            ratio = big / small
            print("\n%s, %d vs %d finished jobs: %.2fx (bound within %.1fx):"
                  " %s" % (what, options.big, options.small, ratio,
                           FLAT_RATIO, "met" if ratio <= FLAT_RATIO
                           else "missed"), end="")
    print()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--small", type=int, default=10000)
    parser.add_argument("--big", type=int, default=1000000)
    parser.add_argument("--ready", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--warm-up", type=float, default=10)
    options = parser.parse_args()
    scenarios = options.scenarios.split(",")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error("unknown scenario %s (known: %s)" % (
            ", ".join(sorted(unknown)), ", ".join(SCENARIOS)))
    if min(options.small, options.big, options.ready, options.runs) < 1 \
            or options.timeout <= 0:
        parser.error("sizes, --runs and --timeout must be positive")
    harness.header("scale")
    harness.compile_bytecode()
    harness.fresh_database()
    harness.configure()
    rows = []
    for scenario in scenarios:
        rows += run_scenario(scenario, options)
    print_summary(rows, options)


if __name__ == "__main__":
    main()
