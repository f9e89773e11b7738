#!/usr/bin/env python3
"""Eight cron runners on one section against one (issue 12): the time to
drain a queue, one committed execution per job, and what they log.

    .venv/bin/python benchmarks/cron.py [--jobs 5000] [--runners 8]
        [--repeat 1] [--timeout 900]

A queue of --jobs ``DoFooJob`` jobs, each asked to ``record`` (it inserts
a ``job_execution`` row in its own transaction: a row is a committed
execution), is drained by one ``cronscripts/run_jobs.py bench_cron`` run
— the cron default: no --worker, no --batch-size, a section that sets
nothing but its source — timed from its start until it exits. Then the
same queue is loaded again and --runners such runs are started at once,
each with a lock directory of its own (so that they do not exclude each
other), timed until the last one exits. With --repeat N the two trials
alternate (1, 8, 1, 8, ...) and the times are medians.

Each run logs at run_jobs.py's default verbosity (INFO, no -q) to a file
of its own. For each trial it prints the runs' exit codes, whether every
job completed with exactly one committed execution, how many INFO lines
the runs logged (the target: at most one a job plus a few a run; "a few"
is taken as 10), the commonest INFO messages (numbers replaced by N), and
the load average; then the speedup (the one run's time over the
runners' time; the target is above 1).
"""

import argparse
import collections
import os
import re
import signal
import subprocess
import tempfile
import time

import harness
import transaction

SECTION = "bench_cron"
EXTRA = """
[%s]
source_interface: jobs.testing.foojob.IDoFooJobSource
""" % SECTION
FEW_LINES_PER_RUN = 10

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\w+)\s+(.*)$")

AUDIT = """
SELECT count(*) FILTER (WHERE job.status = 2),
       count(*) FILTER (WHERE executions.n IS NULL),
       count(*) FILTER (WHERE executions.n > 1),
       coalesce(sum(executions.n), 0)::integer
FROM job LEFT JOIN (SELECT job, count(*) AS n FROM job_execution
                    GROUP BY job) AS executions ON executions.job = job.id
"""


def runner_configs(folder, count):
    """`count` configuration files extending the benchmark's, each with a
    lock directory of its own."""
    base = os.environ["JOBS_CONFIG"]
    paths = []
    for index in range(count):
        path = os.path.join(folder, "runner-%d.conf" % index)
        with open(path, "w") as f:
            f.write("[meta]\nextends: %s\n\n" % os.path.relpath(base, folder))
            f.write("[locks]\nlock_dir: %s\n" % os.path.join(
                folder, "lock-%d" % index))
        paths.append(path)
    return paths


def run_at_once(configs, folder, timeout):
    """Start one cron run per configuration at once; wait for all.

    :return: ``(seconds or None when over `timeout`, exit codes, logs)``.
    """
    logs = [os.path.join(folder, "run-%d.log" % index)
            for index in range(len(configs))]
    runs = []
    started = time.perf_counter()
    for config, log in zip(configs, logs):
        with open(log, "w") as output:
            runs.append(subprocess.Popen(
                harness.run_jobs_command(SECTION),
                env=dict(os.environ, JOBS_CONFIG=config),
                stdout=output, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout
    seconds = None
    try:
        for run in runs:
            run.wait(max(0.0, deadline - time.monotonic()))
        seconds = time.perf_counter() - started
    except subprocess.TimeoutExpired:
        for run in runs:
            if run.poll() is None:
                run.send_signal(signal.SIGKILL)
        for run in runs:
            run.wait()
    return seconds, [run.returncode for run in runs], logs


def read_logs(logs):
    """``(INFO lines per run, Counter of INFO messages, other lines)``."""
    per_run, messages, other = [], collections.Counter(), 0
    for path in logs:
        count = 0
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                match = LINE.match(line)
                if match is None:
                    other += 1
                elif match.group(1) == "INFO":
                    count += 1
                    messages[re.sub(r"\d+", "N", match.group(2))[:90]] += 1
        per_run.append(count)
    return per_run, messages, other


def audit(jobs):
    store = harness.get_store()
    completed, never, twice, executions = store.execute(AUDIT).get_one()
    transaction.abort()
    return dict(completed=completed, without_execution=never,
                more_than_one_execution=twice, executions=executions,
                one_execution_per_job=(completed == jobs and never == 0
                                       and twice == 0 and executions == jobs))


def trial(runners, jobs, timeout):
    harness.load_jobs(jobs, record=True)
    with tempfile.TemporaryDirectory(prefix="jobs-cron-bench-") as folder:
        configs = runner_configs(folder, runners)
        seconds, codes, logs = run_at_once(configs, folder, timeout)
        per_run, messages, other = read_logs(logs)
    info = sum(per_run)
    result = dict(measure="cron runners", runners=runners, jobs=jobs,
                  seconds=round(seconds, 3) if seconds else None,
                  over_timeout_s=None if seconds else timeout,
                  jobs_per_s=round(jobs / seconds) if seconds else None,
                  exit_codes=codes, **audit(jobs),
                  info_lines=info, info_lines_per_job=round(info / jobs, 2),
                  info_lines_per_run=per_run, other_lines=other,
                  info_target_met=info <= jobs + FEW_LINES_PER_RUN * runners,
                  load=harness.load_average())
    harness.emit(**result)
    for message, count in messages.most_common(5):
        print("#   %6d x %s" % (count, message))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runners", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds before a trial's runs are killed")
    options = parser.parse_args()
    if options.jobs < 1 or options.runners < 2 or options.repeat < 1:
        parser.error("--jobs and --repeat must be at least 1, --runners at"
                     " least 2")
    harness.header("cron")
    harness.fresh_database()
    harness.SECTIONS += EXTRA
    harness.configure()
    times = {1: [], options.runners: []}
    for _ in range(options.repeat):
        for runners in times:
            result = trial(runners, options.jobs, options.timeout)
            times[runners].append(result["seconds"])
    one, many = (harness.median(t) if None not in t else None
                 for t in times.values())
    if one and many:
        print("# %d runners vs 1 on %d jobs: %.1f s vs %.1f s, speedup %.2fx"
              " (target > 1)" % (options.runners, options.jobs, many, one,
                                 one / many))
    else:
        print("# speedup: n/a (a trial ran over %s s)" % options.timeout)


if __name__ == "__main__":
    main()
