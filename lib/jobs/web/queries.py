"""What the dashboard's pages read, beyond `jobs.counts` and
`jobs.jobfilter`: throughput, one job's every detail, and the tables
other parts of jobs add (workers, schedules, dependencies), which a page
shows as "not available" while the database lacks them.
"""

__all__ = [
    "DEPENDENCY_TABLE",
    "SCHEDULE_TABLE",
    "WORKER_TABLE",
    "context_of",
    "dependency_tree",
    "job_fields",
    "optional_table",
    "row_values",
    "throughput",
]

import json
import threading
import time
from datetime import timedelta

from storm.info import get_cls_info

from jobs.database import database_now
from jobs.database.catalog import (
    DEPENDENCY_COLUMNS,
    DEPENDENCY_TABLE,
    SCHEDULE_TABLE,
    WORKER_TABLE,
    table_columns,
)
from jobs.database.columns import UTCDateTimeVariable
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job

THROUGHPUT_CACHE_SECONDS = 30.0
_throughput_cache = {}
_lock = threading.Lock()


def _when(value):
    return UTCDateTimeVariable(value=value, from_db=True).get()


def throughput(store, span, bucket_chars):
    """Jobs COMPLETED and FAILED per time bucket over the last `span`.

    :param bucket_chars: 16: per minute (``YYYY-MM-DD HH:MM``); 15: per
        ten minutes. Buckets are the leading characters of the finish
        time's text, the same on both databases.
    :return: ``(start, [(bucket text, completed, failed), ...])``, oldest
        first, empty buckets included; cached 30 s.
    """
    key = (str(store.get_database()), span, bucket_chars)
    with _lock:
        cached = _throughput_cache.get(key)
        if cached and time.monotonic() - cached[0] < THROUGHPUT_CACHE_SECONDS:
            return cached[1]
    now = database_now(store)
    start = now - span
    rows = store.execute(
        "SELECT substr(CAST(date_finished AS text), 1, %d), status, count(*)"
        " FROM job WHERE status IN (?, ?) AND date_finished >= ?"
        " GROUP BY 1, 2" % bucket_chars,
        (JobStatus.COMPLETED.value, JobStatus.FAILED.value,
         start.replace(tzinfo=None).isoformat(" ")))
    counts = {}
    for bucket, status, count in rows:
        done = counts.setdefault(bucket, [0, 0])
        done[0 if status == JobStatus.COMPLETED.value else 1] += count
    step = timedelta(minutes=1 if bucket_chars == 16 else 10)
    buckets = []
    moment = start.replace(second=0, microsecond=0)
    if bucket_chars == 15:
        moment = moment.replace(minute=moment.minute - moment.minute % 10)
    while moment <= now:
        text = moment.strftime("%Y-%m-%d %H:%M")[:bucket_chars]
        completed, failed = counts.get(text, (0, 0))
        buckets.append((moment, completed, failed))
        moment += step
    result = (start, buckets)
    with _lock:
        _throughput_cache[key] = (time.monotonic(), result)
    return result


def row_values(obj):
    """``[(column name, value)]`` of a Storm object, in column order."""
    info = get_cls_info(type(obj))
    names = {column: name for name, column in info.attributes.items()}
    return [(column.name, getattr(obj, names[column]))
            for column in info.columns]


def job_fields(store, job):
    """Every column of `job`'s row (and ``result`` once the table has
    it), as ``[(name, value)]``."""
    fields = row_values(job)
    if "result" in table_columns(store, "job"):
        value = store.execute("SELECT result FROM job WHERE id = ?",
                              (job.id,)).get_one()[0]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        fields.append(("result", value))
    return fields


def context_of(store, config, section, job_id):
    """``[(name, value)]`` of the job's context row (its arguments: the
    row the section's source joins, e.g. ``foo_job``'s json_data or
    ``task_job``'s args), or [] when the section has no source that
    says."""
    from jobs.errors import SectionError
    from jobs.sections import find_section_source
    try:
        condition, tables = find_section_source(
            config, section).jobCondition()
    except (SectionError, AttributeError, NotImplementedError):
        return []
    if not tables:
        return []
    row = store.using(Job, *tables).find(
        tables[0], condition, Job.id == job_id).one()
    return [] if row is None else row_values(row)


def optional_table(store, table, order=None, limit=200):
    """``(columns, rows)`` of `table`, or None when it does not exist."""
    columns = table_columns(store, table)
    if not columns:
        return None
    sql = "SELECT %s FROM %s" % (", ".join(columns), table)
    if order and order in columns:
        sql += " ORDER BY %s DESC" % order
    rows = list(store.execute(sql + " LIMIT %d" % limit))
    return columns, rows


def dependency_tree(store, job_id, depth=5):
    """``(upstream, downstream)`` trees of `job_id`: what it waits for and
    what waits for it, each a list of ``(job id, status, [children])``;
    None when the database has no dependency table."""
    columns = table_columns(store, DEPENDENCY_TABLE)
    if not all(column in columns for column in DEPENDENCY_COLUMNS):
        return None
    job, depends_on = DEPENDENCY_COLUMNS

    def walk(start, mine, theirs, level, seen):
        if level >= depth:
            return []
        rows = list(store.execute(
            "SELECT d.%s, j.status FROM %s d JOIN job j ON j.id = d.%s"
            " WHERE d.%s = ? ORDER BY d.%s" % (
                theirs, DEPENDENCY_TABLE, theirs, mine, theirs), (start,)))
        tree = []
        for other, status in rows:
            if other in seen:
                continue
            tree.append((other, JobStatus.items[status], walk(
                other, mine, theirs, level + 1, seen | {other})))
        return tree

    return (walk(job_id, job, depends_on, 0, {job_id}),
            walk(job_id, depends_on, job, 0, {job_id}))
