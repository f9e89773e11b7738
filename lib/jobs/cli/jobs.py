"""The `jobs` commands about jobs: ``status``, ``list`` and ``show``
(those that change jobs are in `jobs.cli.actions`)."""

__all__ = ["add_commands", "job_types", "orphaned_condition"]

import json
from collections import OrderedDict

from storm.expr import And, Desc, Exists, Func, Not, Or, Select, SQLRaw

from jobs.cli.formatting import (
    job_row,
    output,
    parse_date,
    parse_id,
    parse_status,
    redactor,
)
from jobs.config import get_config
from jobs.database import UTCNow, database_now, get_store
from jobs.counts import count_pairs
from jobs.kinds import section_conditions, sections_seeing_kinds
from jobs.model import dependencies
from jobs.model.oopsreport import list_reports
from jobs.errors import CommandError
from jobs.interfaces.job import PENDING_STATUSES, JobStatus
from jobs.database.stormext import compile_expr
from jobs.model.job import Job, ready_kinds
from jobs.progress import draw

# Statuses a runner may still take a job out of.
UNFINISHED = sorted(PENDING_STATUSES, key=lambda status: status.value)


def get_job(job_id):
    job = get_store().get(Job, job_id)
    if job is None:
        raise CommandError("No job %d." % job_id)
    return job


def job_types():
    """{section name: (condition, tables)} for the configured job sections
    whose source says which jobs are its own (`jobs.kinds`)."""
    return section_conditions(get_config())


def type_condition(name):
    types = job_types()
    if name not in types:
        raise CommandError("Unknown job type %r (job sections: %s)." % (
            name, ", ".join(types) or "none"))
    return _seen_by(*types[name])


def _seen_by(condition, tables):
    """SQL: the job is one of those a source's `jobCondition` matches."""
    return Job.id.is_in(Select(Job.id, where=condition,
                               tables=[Job] + list(tables)))


def _by_tables(types):
    """``{tables: [(section name, condition)]}`` of `types` (`job_types`):
    the sources that join the same tables (the job table left out), which
    one pass over their join serves."""
    groups = OrderedDict()
    for name, (condition, tables) in types.items():
        tables = tuple(table for table in tables if table is not Job)
        groups.setdefault(tables, []).append((name, condition))
    return groups


def _seen(types):
    """SQL, one expression per context table: the outer query's job is
    one that a source of `types` (`job_types`) sees.

    The sources that join the same tables share one correlated
    ``EXISTS`` (an anti-join once negated: PostgreSQL takes the join
    column, common to every branch of the OR, out of it); a condition
    that names only the job table is tested on the row itself.
    """
    seen = []
    for tables, members in _by_tables(types).items():
        either = Or(*[condition for _, condition in members])
        if tables:
            seen.append(Exists(Select(SQLRaw("1"), where=either,
                                      tables=list(tables))))
        else:
            seen.append(Func("COALESCE", either, False))
    return seen


def orphaned_condition(types=None):
    """SQL for unfinished jobs that no configured section's source sees —
    their context row was deleted, or their section removed: no runner
    will ever take them. None when no section's source can say which
    jobs are its own.

    ``NOT EXISTS`` per context table, not ``NOT (id IN (...) OR id IN
    (...))``: PostgreSQL runs the latter as a sub-plan per row once the
    ids do not fit in work_mem (over 300 s at a million waiting jobs).

    :param types: `job_types()`, if the caller has it already.
    """
    if types is None:
        types = job_types()
    if not types:
        return None
    # NOT (a OR b) as NOT a AND NOT b: a NOT EXISTS among ANDs is what
    # PostgreSQL turns into an anti-join.
    return And(Job.status.is_in(UNFINISHED),
               *[Not(seen) for seen in _seen(types)])


def status_counts(store, types):
    """``({JobStatus: jobs}, {section name: {JobStatus: jobs}})``: every
    job's, and each section's of `types` (`job_types`).

    Counted by kind through the ``(kind, status)`` index
    (`jobs.counts.count_pairs`, exact), each kind under every section
    whose source sees its jobs (`jobs.kinds.sections_seeing_kinds`), as
    the metrics and the dashboard count; no join with the context
    tables. Only the rows without a kind (made by hand, or before
    migration 0006), found through the same index, are tested against
    each source's condition (`_joined_counts`).
    """
    # Found now (every kind in the table): a one-shot command has no use
    # for a kept mapping.
    seeing = sections_seeing_kinds(store, get_config(), max_age=0)
    overall, counts = {}, OrderedDict((name, {}) for name in types)
    pairs = count_pairs(store, list(seeing) + [None], None)
    for (kind, status), count in pairs.items():
        overall[status] = overall.get(status, 0) + count
        for name in seeing.get(kind, ()):
            if name in counts:
                counts[name][status] = counts[name].get(status, 0) + count
    if any(kind is None for kind, _ in pairs):
        for name, per_status in _joined_counts(
                store, types, Job.kind == None).items():  # noqa: E711
            for status, count in per_status.items():
                counts[name][status] = counts[name].get(status, 0) + count
    return overall, counts


def _joined_counts(store, types, where):
    """``{section name: {JobStatus: jobs}}``: the jobs matching `where`
    that each source of `types` sees, by its condition.

    One pass per context table (the sources that join the same tables
    share it, each counted by a ``CASE`` of its own condition), not one
    join per source.
    """
    counts = OrderedDict((name, {}) for name in types)
    for tables, members in _by_tables(types).items():
        columns, parameters = [], []
        for _, condition in members:
            sql, condition_parameters = compile_expr(store, condition)
            columns.append("SUM(CASE WHEN %s THEN 1 ELSE 0 END)" % sql)
            parameters += condition_parameters
        sql, where_parameters = compile_expr(
            store, And(where, Or(*[condition for _, condition in members])))
        parameters += where_parameters
        names = ", ".join(["job"] + [compile_expr(store, table)[0]
                                      for table in tables])
        rows = store.execute(
            "SELECT job.status, %s FROM %s WHERE %s GROUP BY job.status"
            % (", ".join(columns), names, sql), parameters)
        for row in rows:
            status = JobStatus.items[row[0]]
            for (name, _), count in zip(members, row[1:]):
                if count:
                    counts[name][status] = count
    return counts


def oldest_ready(store):
    """The creation date of the oldest ready WAITING job (the lowest id:
    ids grow with creation), or None; read in the order of an index
    rather than by taking the minimum over every ready job."""
    waiting, _ = ready_kinds()
    return store.find(Job.date_created, waiting).order_by(Job.id).first()


def cmd_status(options):
    store = get_store()
    types = job_types()
    counts, per_type = status_counts(store, types)
    rows = [OrderedDict(status=item.title, jobs=counts.get(item, 0))
            for item in JobStatus.items]
    by_type = []
    for name, per_status in per_type.items():
        by_type.append(OrderedDict(
            [("type", name)] + [(item.title.lower(), per_status.get(item, 0))
                                for item in JobStatus.items]))
    oldest = oldest_ready(store)
    lost = store.find(Job, Job.status == JobStatus.RUNNING,
                      Job.lease_expires < UTCNow()).count()
    failed = store.find(Job, Job.status == JobStatus.FAILED,
                        Job.date_finished > UTCNow(-3600)).count()
    age = (round((database_now(store) - oldest).total_seconds())
           if oldest else None)
    orphaned = orphaned_condition(types)
    summary = OrderedDict(
        oldest_ready=oldest.isoformat(" ", "seconds") if oldest else None,
        oldest_ready_age_seconds=age,
        running_with_expired_lease=lost, failed_last_hour=failed,
        orphaned=(store.find(Job, orphaned).count()
                  if orphaned is not None else None))
    if options.format == "json":
        print(json.dumps({"statuses": rows, "types": by_type, **summary},
                         indent=1))
        return
    output(rows, options)
    if by_type:
        print()
        output(by_type, options)
    for key, value in summary.items():
        print("%s: %s" % (key.replace("_", " "), value))


def cmd_list(options):
    conditions = []
    if options.status:
        conditions.append(Job.status.is_in(parse_status(options.status)))
    if options.since:
        conditions.append(Job.date_created >= parse_date(options.since))
    if options.type:
        conditions.append(type_condition(options.type))
    if options.orphaned:
        orphaned = orphaned_condition()
        if orphaned is None:
            raise CommandError("No job section's source says which jobs are"
                               " its own: cannot tell orphans.")
        conditions.append(orphaned)
    if options.limit < 1:
        raise CommandError("--limit must be at least 1.")
    jobs = get_store().find(Job, *conditions).order_by(Desc(Job.id))[
        :options.limit]
    output([job_row(job) for job in jobs], options,
           ["id", "status", "attempt_count", "priority", "date_created",
            "date_finished"])


def cmd_show(options):
    job = get_job(parse_id(options.id))
    hide = redactor()
    row = job_row(job)
    row["log"] = hide.text(job.log)
    row["progress"] = (hide.data(json.loads(job.progress)) if job.progress
                       else None)
    row["result"] = hide.data(job.result)
    if job.cancelled_by is not None:
        row["cancelled_by"] = "job %d (a job it depends on failed or was" \
            " cancelled)" % job.cancelled_by
    # From the index: the reports of every host.
    row["oops_ids"] = [report.id for report in list_reports(
        get_store(), job_ids=[job.id])]
    store = get_store()
    trees = [(name, dependencies.graph(store, job.id, upstream))
             for name, upstream in (("depends_on", True),
                                    ("dependents", False))]
    if options.format == "json":
        for name, edges in trees:
            row[name] = edges.get(job.id) and [
                next_id for next_id, _, _ in edges[job.id]]
        print(json.dumps(row, default=str, indent=1))
        return
    for key, value in row.items():
        if key == "progress":
            print("progress:\n%s" % draw(
                json.dumps(value) if value is not None else None))
        elif key == "log":
            print("log:\n%s" % (value or "(none)"))
        elif key == "result":
            print("%-16s %s" % ("result:", json.dumps(value)))
        else:
            print("%-16s %s" % (key + ":", value))
    for name, edges in trees:
        if edges:
            print("%s:\n%s" % (name.replace("_", " "), "\n".join(
                draw_tree(edges, job.id))))


def draw_tree(edges, root, depth=1, seen=None):
    """Lines of the tree `edges` (`jobs.model.dependencies.graph`) below
    `root`, indented by depth; a job met again is named, not expanded."""
    seen = set() if seen is None else seen
    lines = []
    for job_id, status, kind in edges.get(root, ()):
        again = job_id in seen
        seen.add(job_id)
        lines.append("%s- job %d  %s  %s%s" % (
            "  " * depth, job_id, JobStatus.items[status].title, kind or "",
            "  (above)" if again else ""))
        if not again:
            lines.extend(draw_tree(edges, job_id, depth + 1, seen))
    return lines


def add_commands(commands, parser_class):
    """Add the job commands to `commands` (argparse)."""
    commands.add_parser("status", help="counts, oldest ready job, lost,"
                        " recently failed and orphaned jobs"
                        ).set_defaults(run=cmd_status)

    listing = commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", help="e.g. failed or waiting,running")
    listing.add_argument("--since", help="created since a date or an age"
                         " (2026-11-01, 12h, 30d)")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--type", help="a job section, e.g. do_foo")
    listing.add_argument(
        "--orphaned", action="store_true",
        help="unfinished jobs no job section's source sees (their context"
             " row was deleted): no runner will take them")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="every field of one job, its log"
                               " tail and its OOPS ids")
    show.add_argument("id")
    show.set_defaults(run=cmd_show)
