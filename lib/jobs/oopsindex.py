"""The OOPS index: a database row for every OOPS report a runner writes,
so that reports written on any host are listed everywhere.

The report file, in ``[error_reports] error_dir`` on the host that wrote
it, is the full report and the source of truth. When an `ErrorReporter`
made by `jobs.sections.error_reporter_for` has written a file, its
`IndexWriter` inserts the report's row (`jobs.model.oopsreport`) in a
short transaction of its own: on PostgreSQL through the runner's side
connection, committed at once whatever the job's transaction does; on
SQLite (one writer: the runner's own transaction holds the lock) in a
savepoint of the runner's transaction, committed with the outcome. A
row that cannot be written is a WARNING, never a lost report: the file
is there, and ``jobs oops reindex`` on its host indexes every local file
the index lacks.

The host is ``[error_reports] host`` (default: the machine's name).
"""

__all__ = [
    "IndexWriter",
    "files_of_jobs",
    "read_indexed",
    "reindex",
    "remove_files",
    "row_of",
]

import glob
import logging
import os
import shutil

from jobs.database import Savepoint, dialect, get_store
from jobs.errorlog import (
    NO_OOPS,
    find_report,
    fingerprint,
    iter_reports,
    read_report,
    report_time,
)
from jobs.errors import NotFoundError
from jobs.heartbeat import SideConnection
from jobs.model.oopsreport import OopsReport, insert_rows

logger = logging.getLogger(__name__)


def row_of(report, section, host):
    """The index row (a dict) of `report` (an OOPS report dict)."""
    from jobs.database import clock
    return dict(
        id=report["id"], reported=report_time(report) or clock.now(),
        job_id=report.get("job_id"), section=section,
        exception_type=report.get("type"),
        exception_value=report.get("value"),
        fingerprint=fingerprint(report), host=host)


class IndexWriter:
    """Indexes each report its `ErrorReporter` has written (a listener:
    ``reporter.listeners``); never raises.

    :param section: the section whose runner files the reports (or None).
    :param host: the host name the rows give (``[error_reports] host``).
    """

    def __init__(self, section, host):
        self.section = section
        self.host = host

    def __call__(self, report):
        try:
            self.write(row_of(report, self.section, self.host))
        except Exception as e:
            logger.warning(
                "OOPS report %s was written but not indexed (%s: %s);"
                " `jobs oops reindex` on this host indexes it.",
                report.get("id"), type(e).__name__,
                " ".join(str(e).split()), extra={NO_OOPS: True})

    def write(self, row):
        """Insert `row` in a transaction of its own (see the module)."""
        store = get_store()
        if dialect(store).concurrent_writes:
            SideConnection.of(store).run(insert_rows, [row])
            return
        savepoint = Savepoint(store)
        try:
            insert_rows(store, [row])
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.release()


def read_indexed(store, config, oops_id):
    """Report `oops_id` (a dict) from its file on this host.

    :raises NotFoundError: naming the host that holds it when the file is
        not here, or saying that no report has that id.
    """
    try:
        return read_report(config.error_dir, oops_id)
    except NotFoundError:
        row = store.get(OopsReport, oops_id)
        if row is None:
            raise NotFoundError("No OOPS report %s in the index or in %s."
                                % (oops_id, config.error_dir)) from None
    if row.host != config.error_host:
        raise NotFoundError(
            "OOPS report %s is on host %s (job %s, section %s, %s: %s):"
            " run `jobs oops show %s` there." % (
                oops_id, row.host, row.job_id, row.section,
                row.exception_type, row.exception_value, oops_id))
    raise NotFoundError(
        "OOPS report %s was written on this host (%s) but its file is no"
        " longer in %s." % (oops_id, row.host, config.error_dir))


def files_of_jobs(store, config, job_ids):
    """The index rows of `job_ids`' reports and where their files are:
    ``(report ids, local paths, reports on other hosts)``."""
    ids, paths, elsewhere = [], [], 0
    for oops_id, host in store.find(
            (OopsReport.id, OopsReport.host),
            OopsReport.job_id.is_in(list(job_ids))):
        ids.append(oops_id)
        if host != config.error_host:
            elsewhere += 1
            continue
        try:
            paths.append(find_report(config.error_dir, oops_id))
        except NotFoundError:
            pass  # already gone
    return ids, paths, elsewhere


def remove_files(paths):
    """Delete the report files `paths`; return how many went."""
    removed = 0
    for path in paths:
        try:
            os.remove(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def section_of(report, config):
    """The section a report was filed for, from its reporter
    (``<oops_prefix>-<section>``), or None."""
    reporter = report.get("reporter") or ""
    prefix = config.oops_prefix + "-"
    return reporter[len(prefix):] or None if reporter.startswith(
        prefix) else None


def reindex(store, config, batch=500):
    """Index this host's report files that the index lacks (written
    before the index existed, or when its row could not be written);
    return how many were added. Commits each batch."""
    import transaction
    added = 0
    reports = iter_reports(config.error_dir)
    for start in range(0, len(reports), batch):
        chunk = reports[start:start + batch]
        known = set(store.find(OopsReport.id, OopsReport.id.is_in(
            [report["id"] for report in chunk])))
        added += insert_rows(store, [
            row_of(report, section_of(report, config), config.error_host)
            for report in chunk if report["id"] not in known])
        transaction.commit()
    return added


def day_folders_before(config, before):
    """This host's report folders (one per UTC day) of the days before
    `before` (an aware datetime), oldest first."""
    day = before.strftime("%Y-%m-%d")
    return sorted(path for path in glob.glob(os.path.join(
        config.error_dir, "????-??-??")) if os.path.basename(path) < day)


def remove_day_folders(folders):
    """Delete whole report folders; return the ids of the reports in
    them (for their index rows)."""
    ids = []
    for folder in folders:
        ids += [name for name in os.listdir(folder)
                if name.startswith("OOPS-") and not name.endswith(".tmp")]
        shutil.rmtree(folder, ignore_errors=True)
    return ids
