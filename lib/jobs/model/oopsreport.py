"""`OopsReport`: the ``oops_report`` table, one row per OOPS report.

The report file, on the host that wrote it, is the full report and the
source of truth; a row says which report exists, about which job and
section, what it was (exception type and value, fingerprint) and which
host holds the file. `jobs.oopsindex` writes the rows as reports are
published; the ``jobs`` command and the dashboard read them here, so
that reports from every host are listed.

Plain values in, plain values out: rows are `OopsReport` objects (read
only) or tuples; times are aware UTC datetimes.
"""

__all__ = [
    "OopsReport",
    "delete_rows",
    "insert_rows",
    "list_reports",
    "reports_of_jobs",
    "summarise",
]

from storm.expr import Count, Desc, Max, Min
from storm.locals import Int, Unicode

from jobs.database import UTCDateTime

# Longer values are cut: the file has the whole text.
VALUE_LIMIT = 1000
COLUMNS = ("id", "reported", "job_id", "section", "exception_type",
           "exception_value", "fingerprint", "host")


class OopsReport:
    """One indexed OOPS report (see the module's docstring)."""

    __storm_table__ = "oops_report"

    id = Unicode(primary=True)
    reported = UTCDateTime(allow_none=False)
    job_id = Int()
    section = Unicode()
    exception_type = Unicode()
    exception_value = Unicode()
    fingerprint = Unicode(allow_none=False)
    host = Unicode(allow_none=False)


def _naive_utc(value):
    """`value` (an aware datetime) as the naive UTC text columns hold."""
    return UTCDateTime.variable_class(value=value).get(to_db=True)


def insert_rows(store, rows):
    """Insert `rows` (dicts with the keys of `COLUMNS`) whose ids are not
    there yet; return how many were inserted. Leaves the transaction to
    the caller.

    A plain INSERT, not Storm's ``add``: a section's role may INSERT into
    the table without reading it back.
    """
    inserted = 0
    statement = "INSERT INTO oops_report (%s) VALUES (%s)" % (
        ", ".join(COLUMNS), ", ".join("?" for _ in COLUMNS))
    for row in rows:
        values = dict(row)
        values["reported"] = _naive_utc(values["reported"])
        value = values.get("exception_value")
        if isinstance(value, str) and len(value) > VALUE_LIMIT:
            values["exception_value"] = value[:VALUE_LIMIT] + "..."
        result = store.execute(
            statement + " ON CONFLICT (id) DO NOTHING",
            tuple(values.get(column) for column in COLUMNS))
        inserted += max(0, result.rowcount)
    return inserted


def list_reports(store, since=None, fingerprint=None, job_ids=None,
                 limit=None):
    """Indexed reports, oldest first.

    :param since: an aware datetime: only reports since then.
    :param fingerprint: only the reports of this fingerprint.
    :param job_ids: only the reports of these jobs.
    :param limit: at most this many, the newest (still oldest first).
    """
    conditions = []
    if since is not None:
        conditions.append(OopsReport.reported >= since)
    if fingerprint is not None:
        conditions.append(OopsReport.fingerprint == fingerprint)
    if job_ids is not None:
        conditions.append(OopsReport.job_id.is_in(list(job_ids)))
    found = store.find(OopsReport, *conditions)
    if limit is None:
        return list(found.order_by(OopsReport.reported, OopsReport.id))
    newest = list(found.order_by(Desc(OopsReport.reported),
                                 Desc(OopsReport.id))[:limit])
    return newest[::-1]


def reports_of_jobs(store, job_ids):
    """``{job id: [OopsReport, ...]}`` (oldest first) of `job_ids`."""
    found = {}
    for report in list_reports(store, job_ids=job_ids):
        found.setdefault(report.job_id, []).append(report)
    return found


def summarise(store, since=None, limit=100):
    """Reports grouped by fingerprint, the most frequent first: dicts of
    ``fingerprint``, ``count``, ``first_seen``, ``last_seen``,
    ``example`` (one report's id) and ``hosts`` (how many hosts hold
    them)."""
    conditions = []
    if since is not None:
        conditions.append(OopsReport.reported >= since)
    rows = store.find(
        (OopsReport.fingerprint, Count(), Min(OopsReport.reported),
         Max(OopsReport.reported), Min(OopsReport.id),
         Count(OopsReport.host, distinct=True)),
        *conditions).group_by(OopsReport.fingerprint).order_by(
            Desc(Count()), OopsReport.fingerprint)[:limit]
    return [dict(fingerprint=fingerprint, count=count,
                 first_seen=_aware(first), last_seen=_aware(last),
                 example=example, hosts=hosts)
            for fingerprint, count, first, last, example, hosts in rows]


def _aware(value):
    """A timestamp read by an aggregate (naive, or text on SQLite) as an
    aware UTC datetime."""
    if value is None:
        return None
    return UTCDateTime.variable_class(value=value, from_db=True).get()


def delete_rows(store, ids):
    """Delete the rows of report `ids`; return how many went."""
    ids = list(ids)
    if not ids:
        return 0
    return store.find(OopsReport, OopsReport.id.is_in(ids)).remove()
