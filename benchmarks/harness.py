"""What every benchmark needs: a fresh PostgreSQL database with the schema,
a configuration with benchmark sections, bulk jobs, and reporting.

Benchmarks use the reference job type (`DoFooJob`) with no behaviour: a
no-op ``run()``. They talk to the local PostgreSQL only.
"""

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import psycopg2
import transaction

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

from jobs import schema  # noqa: E402
from jobs.config import set_config  # noqa: E402
from jobs.database import connect, disconnect, get_store  # noqa: E402
from jobs.registration import register_components  # noqa: E402
from jobs.testing.factory import make_many_foo_jobs  # noqa: E402
from jobs.testing.fixtures import ConfigFixture  # noqa: E402
from jobs.testing.foojob import MIGRATIONS, DoFooJob, Foo  # noqa: E402

DATABASE = os.environ.get("JOBS_BENCH_DB", "jobs_bench")
# The local socket, as the baseline in shared/reference was measured.
URI = "postgres:///%s" % DATABASE
SECTIONS = """
[bench_per_job]
source_interface: jobs.testing.foojob.IDoFooJobSource
batch_size: 1

[bench]
source_interface: jobs.testing.foojob.IDoFooJobSource
batch_size: 100

[bench_group]
source_interface: jobs.testing.foojob.IDoFooJobSource
batch_size: 200
group_commit: 200
"""


def admin():
    connection = psycopg2.connect("dbname=postgres")
    connection.autocommit = True
    return connection


def fresh_database():
    """Drop and create the benchmark database with the schema; connect the
    main store to it; return its URI."""
    disconnect()
    connection = admin()
    with connection.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % DATABASE)
        cursor.execute('CREATE DATABASE "%s"' % DATABASE)
    connection.close()
    connect(URI)
    schema.upgrade(get_store(), (schema.FRAMEWORK, MIGRATIONS))
    os.environ["JOBS_DATABASE_URI"] = URI
    return URI


def configure():
    """A configuration with the benchmark sections (also for children)."""
    fixture = ConfigFixture(SECTIONS)
    fixture.setUp()
    register_components(fixture.config)
    set_config(fixture.config)
    return fixture.config


def load_jobs(count, finished=0, **behaviour):
    """Empty the job tables, add `count` waiting jobs (and `finished`
    COMPLETED ones), ANALYZE; return the waiting jobs' ids.

    :param behaviour: the waiting jobs' ``json_data`` (see
        `DoFooJob.create`); none: no-op jobs.
    """
    store = get_store()
    store.execute("DELETE FROM job_execution")
    store.execute("DELETE FROM foo_job")
    store.execute("DELETE FROM job")
    store.execute("DELETE FROM foo")
    foo = Foo("bench")
    store.add(foo)
    if finished:
        make_many_foo_jobs(store, foo, finished, status=2)
    ids = make_many_foo_jobs(store, foo, count, **behaviour)
    transaction.commit()
    analyze()
    return ids


NOW = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
# The rows of each kind of job `bulk_load` inserts: (status, the columns
# besides status, their values as SQL).
BULK_KINDS = {
    # COMPLETED an hour ago, after one attempt.
    "finished": (2, "attempt_count, date_created, date_started,"
                    " date_finished",
                 "1, %s - interval '2 hours', %s - interval '1 hour',"
                 " %s - interval '1 hour'" % (NOW, NOW, NOW)),
    # WAITING, scheduled a day ahead.
    "future": (0, "scheduled_start", "%s + interval '1 day'" % NOW),
    # WAITING and ready now.
    "waiting": (0, None, None),
}


def bulk_load(parts):
    """Empty the job tables (TRUNCATE) and insert no-op DoFooJob jobs,
    oldest first, with one INSERT ... SELECT FROM generate_series per
    table and part; then VACUUM ANALYZE.

    :param parts: ``[(count, kind)]``, kind one of `BULK_KINDS`.
    """
    transaction.abort()  # the main store's locks would hold the TRUNCATE
    connection = psycopg2.connect("dbname=%s" % DATABASE)
    with connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE job_execution, foo_job, job, foo"
                       " RESTART IDENTITY CASCADE")
        cursor.execute("INSERT INTO foo (name) VALUES ('bench') RETURNING id")
        foo = cursor.fetchone()[0]
        for count, kind in parts:
            status, columns, values = BULK_KINDS[kind]
            cursor.execute("SELECT coalesce(max(id), 0) FROM job")
            before = cursor.fetchone()[0]
            # Each row's kind as DoFooJob.create sets it: what the counts
            # by kind read (`jobs.kinds`).
            cursor.execute(
                "INSERT INTO job (status, kind%s) SELECT %d, %%s%s FROM"
                " generate_series(1, %%s)" % (
                    ", " + columns if columns else "", status,
                    ", " + values if values else ""),
                (DoFooJob.job_kind(), count))
            cursor.execute(
                "INSERT INTO foo_job (job, foo, job_type, json_data)"
                " SELECT id, %s, %s, '{}' FROM job WHERE id > %s",
                (foo, DoFooJob.class_job_type.value, before))
    connection.close()
    analyze()


def analyze():
    # Fresh bulk loads have no statistics; measure the steady state.
    connection = psycopg2.connect("dbname=%s" % DATABASE)
    connection.autocommit = True
    connection.cursor().execute("VACUUM ANALYZE")
    connection.close()


def count_status(status):
    store = get_store()
    result = store.execute(
        "SELECT count(*) FROM job WHERE status = ?", (status,)).get_one()[0]
    transaction.abort()
    return result


def compile_bytecode():
    """Write the bytecode of the jobs package, as installing it does (pip
    compiles what it installs): a checkout run under
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile its hundred
    modules in every command, 0.3 s of CPU that no installed ``jobs``
    spends (a start-up of 0.26 s instead of 0.18 s on the VM of
    2026-12-01)."""
    import compileall
    compileall.compile_dir(os.path.join(ROOT, "lib", "jobs"), quiet=1)


def run_jobs_command(*args):
    return [sys.executable, os.path.join(ROOT, "cronscripts", "run_jobs.py"),
            *args]


def timed(function, *args, **kwargs):
    # Each measurement starts without the previous one's garbage.
    gc.collect()
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def machine():
    """One line describing this machine and the database."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    version = subprocess.run(["psql", "-d", "postgres", "-Atc", "SHOW server_version"],
                             capture_output=True, text=True).stdout.strip()
    return "%s, %d cores, %s, Python %s, PostgreSQL %s" % (
        platform.node(), os.cpu_count(), cpu, platform.python_version(),
        version)


def load_average():
    """The 1, 5 and 15 minute load averages, rounded (for every figure:
    on this shared 2-core machine, what else ran matters)."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_times():
    """``(steal, total)``: the jiffies all CPUs have spent since boot, and
    those of them the hypervisor gave to another guest (``/proc/stat``);
    None where there is no such file."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice:
    # guest time is counted in user time already.
    times = [int(value) for value in fields[1:9]]
    return times[7], sum(times)


def steal_share(before, after):
    """The share of CPU time the hypervisor took away between two
    `cpu_times` (None if unknown): on a shared VM, a round that lost a
    tenth of its CPU to other guests is slower for it, and the load
    average does not show it."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def header(name):
    print("# %s — %s" % (name, datetime.now(timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")))
    print("# machine: %s" % machine())
    print("# load average at start (1/5/15 min): %s" % " / ".join(
        map(str, load_average())))
    print("# command: %s" % " ".join([os.path.relpath(sys.argv[0], ROOT)]
                                     + sys.argv[1:]))


def emit(**figures):
    """Print one result as a JSON line (for BENCHMARKS.md and tooling)."""
    print(json.dumps(figures, default=str))
    sys.stdout.flush()


def median(values):
    return statistics.median(values)
