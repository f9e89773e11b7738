"""The reference rows of `throughput.py`: what the framework is measured
against, each run on the same PostgreSQL and the same Unix socket.

Every function drains `count` jobs once and returns the jobs/s.

- `pgbench`: pgbench's two-transaction claim/complete loop, the physical
  limit of one commit per claim and one per completion.
- `raw`: `raw_ceiling.py`, the framework's own statements with no
  framework around them (its floor).
- `peer`: PgQueuer or Procrastinate in one configuration, through their
  scripts in ``benchmarks/peers`` (venv made by ``peers/setup.sh``).
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import harness

PEERS = os.path.join(harness.ROOT, "benchmarks", "peers")
PEERS_PYTHON = os.path.join(harness.ROOT, "benchmarks", ".venv-peers", "bin",
                            "python")
# The peers get a database of their own, next to the benchmark's.
PEERS_DSN = "dbname=%s_peers host=/var/run/postgresql" % harness.DATABASE

PGBENCH_SCRIPT = """\
BEGIN;
UPDATE pgb_job SET status = 1 WHERE id = (SELECT id FROM pgb_job WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id AS job_id \\gset
COMMIT;
UPDATE pgb_job SET status = 2 WHERE id = :job_id;
"""


def pgbench(count, clients):
    """pgbench's claim (one transaction) + complete (another), `clients`
    connections over the local socket."""
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
        result = subprocess.run(
            ["pgbench", "-n", "-c", str(clients), "-j", str(clients),
             "-t", str(count // clients), "-f", script.name,
             harness.DATABASE], capture_output=True, text=True)
    found = re.search(r"tps = ([\d.]+)", result.stdout)
    if result.returncode or not found:
        raise RuntimeError("pgbench failed: %s" % result.stderr[-500:])
    return float(found.group(1))


def raw(count, shape, processes):
    """`raw_ceiling.py` over `count` freshly loaded jobs."""
    harness.load_jobs(count)
    record = _json_line(subprocess.run(
        [sys.executable, os.path.join(harness.ROOT, "benchmarks",
                                      "raw_ceiling.py"),
         "--shape", shape, "--processes", str(processes),
         "--database", harness.DATABASE],
        capture_output=True, text=True, timeout=1800), "raw_ceiling.py")
    if record["jobs"] != count:
        raise RuntimeError("raw ceiling: %d of %d jobs completed"
                           % (record["jobs"], count))
    return record["jobs_per_s"]


def peers_installed():
    return os.path.exists(PEERS_PYTHON)


def peer(count, system, processes, **setting):
    """One peer configuration's drain rate: ``system`` "pgqueuer" (setting
    ``batch_size``) or "procrastinate" (setting ``concurrency``)."""
    arguments = ["--jobs", str(count), "--processes", str(processes),
                 "--dsn", PEERS_DSN, "--no-single-sample"]
    if system == "pgqueuer":
        arguments += ["--batch-sizes", str(setting["batch_size"])]
    else:
        arguments += ["--concurrency", str(setting["concurrency"])]
    result = subprocess.run(
        [PEERS_PYTHON, os.path.join(PEERS, "%s_bench.py" % system)]
        + arguments, capture_output=True, text=True, timeout=1800)
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("measure") == "process":
                return record["jobs_per_s"]
    raise RuntimeError("%s failed (exit %d): %s" % (
        system, result.returncode, result.stderr[-800:]))


def _json_line(result, name):
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("%s failed (exit %d): %s" % (
        name, result.returncode, result.stderr[-800:]))
