"""Creating job rows: one (`create_job`) or many in multi-row INSERTs
(`create_jobs`, `bulk_create`), with the options of `jobs.model.options`.

A unique key is enforced by the partial unique index on ``(kind,
unique_key)`` of pending jobs: a job whose key is taken is not inserted
(``INSERT ... ON CONFLICT DO NOTHING``) and the pending one holding it is
read and returned instead, which stays race-free across connections.
Every job row gets its ``kind`` (see the migration
``0006_kind_unique_task``).
"""

from __future__ import annotations

__all__ = [
    "bulk_create",
    "create_job",
    "create_jobs",
    "create_tableless_job",
]

from typing import Any, Iterable, Optional, Sequence

from jobs.database import UTCNow, dialect
from jobs.errors import InvalidJobData, JobsError
from jobs.database.stormext import compile_expr as compiled
from jobs.model.dependencies import attach
from jobs.model.events import creation_watched
from jobs.model.job import Job
from jobs.model.jsondata import MAX_JSON_DATA_BYTES, check_json_data, json_text
from jobs.model.options import (
    OPTION_NAMES, EnqueueOptions, check_max_retries, enqueue_options)
from jobs.model.rows import Encoded, Expression, column_writer, insert_rows

# The statuses of a pending job: the partial unique index's predicate.
PENDING_VALUES = (0, 1, 4, 6)
# Rows per INSERT statement in bulk (SQLite: 9 parameters a row, below its
# limit of 32,766; PostgreSQL: one array parameter a column).
CHUNK = 2000
# How often a duplicate key is tried again when its pending job finished
# between the INSERT and the read.
UNIQUE_ATTEMPTS = 5


def create_job(store: Any, kind: str, options: EnqueueOptions,
               max_retries: int = 0, base_job_type: Optional[int] = None,
               base_json_data: Any = None,
               max_json_data_bytes: int = MAX_JSON_DATA_BYTES
               ) -> tuple[Job, bool]:
    """Create one WAITING job row of `kind` with `options`, or find the
    pending one holding its unique key.

    Flushes, so the id exists; leaves the transaction to the caller.

    :return: ``(job, created)``: `created` is False when the key was
        taken and `job` is the pending job that holds it.
    :raises InvalidJobData: for `base_json_data` that cannot be stored.
    """
    if base_json_data is not None:
        check_json_data(base_json_data, max_json_data_bytes)
    check_max_retries(max_retries)
    if options.unique_key is None:
        job = Job(max_retries=max_retries, base_job_type=base_job_type,
                  base_json_data=base_json_data, kind=kind,
                  priority=options.priority)
        job.scheduled_start = options.start_value()
        job.concurrency_key = options.concurrency_key
        store.add(job)
        store.flush()
        if options.depends_on:
            attach(store, [(job.id, options.depends_on,
                            options.run_if_dependency_fails)])
            store.invalidate(job)
        return job, True
    [(job_id, created)] = create_jobs(
        store, kind, [options], max_retries,
        [(base_job_type, base_json_data)])
    return store.get(Job, job_id), created


def create_tableless_job(job_class: Any, base_job_type: int,
                         base_json_data: Any, max_retries: int = 0,
                         **options: Any) -> Any:
    """Create a job of `job_class`, a job type without a context table
    (its type in ``job.base_job_type``, its data in
    ``job.base_json_data``; kind ``job:<base_job_type>``), and return it:
    ``job_class(job_row)``.

    :param options: `enqueue_options`' (delay, scheduled_start,
        priority, unique_key); a taken unique key returns the pending
        job that holds it.
    :raises InvalidJobOption: for a bad option.
    :raises InvalidJobData: for data that cannot be stored.
    Flushes; leaves the transaction to the caller.
    """
    from jobs.database import get_store
    job, created = create_job(
        get_store(), "job:%d" % base_job_type, enqueue_options(**options),
        max_retries, base_job_type, base_json_data,
        job_class.max_json_data_bytes)
    wrapper = job_class(job)
    if created:
        job_class.after_create(wrapper)
    return wrapper


def _allocate_ids(store: Any, count: int) -> list[int]:
    """`count` new job ids, in increasing order, for explicit INSERTs.

    PostgreSQL: from the id sequence; SQLite: past the AUTOINCREMENT
    counter, under the write lock this statement's transaction takes.
    """
    if dialect(store).sequences:
        # One row (an array) rather than `count` rows to convert.
        return sorted(store.execute(
            "SELECT array_agg(nextval(pg_get_serial_sequence('job', 'id')))"
            " FROM generate_series(1, ?)", (count,)).get_one()[0])
    last = store.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence"
        " WHERE name = 'job'), 0), coalesce((SELECT max(id) FROM job), 0))"
    ).get_one()[0]
    return list(range(last + 1, last + 1 + count))


# The columns a new job row is given; the last five default to NULL.
JOB_COLUMNS = ("id", "max_retries", "priority", "scheduled_start",
               "date_created", "kind", "unique_key", "base_job_type",
               "base_json_data", "concurrency_key")


def create_jobs(store: Any, kind: str, options: Sequence[EnqueueOptions],
                max_retries: int = 0,
                bases: Optional[Sequence[tuple[Optional[int], Any]]] = None,
                attempts: int = UNIQUE_ATTEMPTS,
                ) -> list[tuple[int, bool]]:
    """Create one WAITING job row of `kind` per entry of `options`, in
    multi-row INSERTs.

    :param bases: ``(base_job_type, base_json_data)`` per job (already
        checked), for jobs without a context table.
    :param attempts: how often an entry whose key's holder finished
        between the INSERT and the read is tried again.
    :return: ``(job_id, created)`` per entry, in order; `created` is
        False when the entry's unique key was taken, and `job_id` is then
        the pending job holding it (an earlier entry's, maybe).
    Leaves the transaction to the caller.
    """
    if not options:
        return []
    check_max_retries(max_retries)
    store.flush()
    ids = _allocate_ids(store, len(options))
    now = Expression(*compiled(store, UTCNow()))
    delays: dict[float, Expression] = {}
    results: list[tuple[int, bool]] = []
    for first in range(0, len(options), CHUNK):
        rows: list[tuple[Any, ...]] = []
        chunk = options[first:first + CHUNK]
        for offset, option in enumerate(chunk):
            index = first + offset
            start: Any = None
            if option.delay:
                start = delays.get(option.delay)
                if start is None:
                    start = delays[option.delay] = Expression(
                        *compiled(store, UTCNow(option.delay)))
            elif option.scheduled_start is not None:
                start = Job.scheduled_start.variable_factory(
                    value=option.scheduled_start).get(to_db=True)
            base_type, base_data = bases[index] if bases else (None, None)
            if base_data is not None:
                base_data = Job.base_json_data.variable_factory(
                    value=base_data).get(to_db=True)
            rows.append((ids[index], max_retries, option.priority, start, now,
                         kind, option.unique_key, base_type, base_data,
                         option.concurrency_key))
        # Columns no row of the chunk sets are left to their default
        # (NULL): fewer parameters to send.
        keep = [column for column in range(len(JOB_COLUMNS))
                if any(row[column] is not None for row in rows)]
        if len(keep) < len(JOB_COLUMNS):
            rows = [tuple(row[column] for column in keep) for row in rows]
        columns = [JOB_COLUMNS[column] for column in keep]
        chunk_ids = ids[first:first + CHUNK]
        if any(option.unique_key is not None for option in chunk):
            inserted = {row[0] for row in insert_rows(
                store, "job", columns, rows,
                " ON CONFLICT DO NOTHING RETURNING id")}
            results.extend((job_id, job_id in inserted)
                           for job_id in chunk_ids)
        else:
            insert_rows(store, "job", columns, rows)
            results.extend((job_id, True) for job_id in chunk_ids)
    refused = [index for index, (_, created) in enumerate(results)
               if not created]
    attach(store, [(job_id, option.depends_on,
                    option.run_if_dependency_fails)
                   for (job_id, created), option in zip(results, options)
                   if created and option.depends_on])
    if refused:
        _find_holders(store, kind, options, results, refused, max_retries,
                      bases, attempts)
    return results


def _find_holders(store: Any, kind: str, options: Sequence[EnqueueOptions],
                  results: list[tuple[int, bool]], refused: list[int],
                  max_retries: int,
                  bases: Optional[Sequence[tuple[Optional[int], Any]]],
                  attempts: int) -> None:
    """Give each refused entry of `results` the pending job holding its
    key; insert again the entries whose holder finished meanwhile."""
    keys = sorted({key for key in (options[index].unique_key
                                   for index in refused) if key is not None})
    holders: dict[str, int] = {}
    for first in range(0, len(keys), CHUNK):
        chunk = keys[first:first + CHUNK]
        holders.update(store.execute(
            "SELECT unique_key, id FROM job WHERE kind = ? AND unique_key IN"
            " (%s) AND status IN (%s)" % (
                ", ".join(["?"] * len(chunk)),
                ", ".join(map(str, PENDING_VALUES))), [kind] + chunk))
    again = []
    for index in refused:
        holder = holders.get(options[index].unique_key or "")
        if holder is not None:
            results[index] = (holder, False)
        else:
            again.append(index)
    if again and attempts > 1:
        retried = create_jobs(
            store, kind, [options[index] for index in again], max_retries,
            [bases[index] for index in again] if bases else None,
            attempts - 1)
        for index, result in zip(again, retried):
            results[index] = result
    elif again:
        raise JobsError(
            "unique_key %r: the pending job holding it kept finishing"
            " while a new one was made." % options[again[0]].unique_key)


def bulk_create(job_class: Any, rows: Iterable[dict[str, Any]],
                shared: dict[str, Any], kind: Optional[str] = None,
                max_retries: Optional[int] = None,
                fixed: Optional[dict[str, Any]] = None,
                default_priority: int = 0) -> list[int]:
    """Create a job of `job_class` (a `DerivedJob`) per entry of `rows`:
    the job rows, then the context rows, in multi-row INSERTs.

    :param rows: dicts of context columns (a value may be `Encoded`),
        each of which may hold its own job's `OPTION_NAMES`.
    :param shared: options for every row that does not give its own.
    :param kind: default ``job_class.job_kind()``.
    :param max_retries: default the class's policy.
    :param fixed: context columns every row gets (default: the class's
        ``job_type``).
    :return: the job ids, in order (a taken key: the pending job's).
    :raises InvalidJobOption: for a bad option.
    :raises InvalidJobData: for ``json_data`` that cannot be stored or a
        key that is not a column.
    Leaves the transaction to the caller.
    """
    from jobs.database import get_store
    context_class = job_class.context_class
    if fixed is None:
        fixed = ({} if job_class.class_job_type is None
                 else {"job_type": job_class.class_job_type})
    common = enqueue_options(default_priority=default_priority, **shared)
    options, contexts = [], []
    for row in rows:
        row = dict(row)
        own = {name: row.pop(name) for name in OPTION_NAMES if name in row}
        if own:
            merged = dict(shared, **own)
            options.append(enqueue_options(
                merged.get("delay"), merged.get("scheduled_start"),
                merged.get("priority"), merged.get("unique_key"),
                default_priority, merged.get("depends_on"),
                merged.get("on_dependency_failure"),
                merged.get("concurrency_key")))
        else:
            options.append(common)
        if row.get("json_data") is not None:
            row["json_data"] = Encoded(json_text(
                row["json_data"], job_class.max_json_data_bytes))
        row.update(fixed)
        contexts.append(row)
    store = get_store()
    results = create_jobs(
        store, kind or job_class.job_kind(), options,
        job_class._max_retries() if max_retries is None else max_retries)
    created = [(job_id, context) for (job_id, made), context
               in zip(results, contexts) if made]
    values = []
    names: list[str] = []
    if created:
        first_keys = sorted(created[0][1])
        layout = sorted(
            column_writer(context_class, key, created[0][1][key]) + (key,)
            for key in first_keys)
        names = [name for name, _, _ in layout]
        for job_id, context in created:
            if len(context) != len(layout) or context.keys() != set(
                    first_keys):
                raise InvalidJobData(
                    "Rows to create jobs with must give the same columns: %s,"
                    " then %s." % (", ".join(first_keys),
                                   ", ".join(sorted(context))))
            values.append((job_id,) + tuple(
                write(context[key]) for _, write, key in layout))
    for first in range(0, len(values), CHUNK):
        insert_rows(store, context_class.__storm_table__, ["job"] + names,
                    values[first:first + CHUNK])
    if created:
        # Tell the subscribers (Celery dispatch) of each new job; when
        # there are none, do not load thousands of jobs for nothing.
        if creation_watched():
            for job in job_class.getJobs([job_id for job_id, _ in created]):
                job_class.after_create(job)
    return [job_id for job_id, _ in results]
