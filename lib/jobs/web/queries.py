"""What the dashboard's pages read, beyond `jobs.counts` and
`jobs.jobfilter`: throughput, one job's every detail (its context row and
its dependency trees), and the live workers and schedules as their
commands list them.
"""

__all__ = [
    "context_of",
    "dependency_tree",
    "row_values",
    "schedules",
    "throughput",
    "workers",
]

import threading
import time
from datetime import timedelta

from storm.info import get_cls_info

from jobs.database import database_now
from jobs.database.columns import UTCDateTimeVariable
from jobs.interfaces.job import JobStatus
from jobs.model import dependencies
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


def workers(store, config):
    """``(columns, rows)`` of the runners, as ``jobs workers`` lists
    them."""
    from jobs.cli.workers import COLUMNS, jobs_text, worker_rows
    rows = worker_rows(config, store)
    return list(COLUMNS), [
        [jobs_text(row["jobs"]) if column == "jobs" else row[column]
         for column in COLUMNS] for row in rows]


def schedules(store, config):
    """``(columns, rows)`` of the configured schedules, as
    ``jobs schedules`` lists them."""
    from jobs.cli.schedules import schedule_rows
    rows = schedule_rows(config, store)
    columns = list(rows[0]) if rows else ["schedule"]
    return columns, [list(row.values()) for row in rows]


def dependency_tree(store, job_id, depth=5):
    """``(upstream, downstream)`` trees of `job_id`: what it waits for and
    what waits for it, each a list of ``(job id, status, [children])``,
    at most `depth` levels deep."""

    def tree(edges, start, level, seen):
        if level >= depth:
            return []
        return [(other, JobStatus.items[status],
                 tree(edges, other, level + 1, seen | {other}))
                for other, status, _ in edges.get(start, ())
                if other not in seen]

    return tuple(tree(dependencies.graph(store, job_id, upstream), job_id,
                      0, {job_id}) for upstream in (True, False))
