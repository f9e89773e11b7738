"""OOPS reports: build them, publish them to a date-dir repository, read
them back by id, list and summarise them.

A report is a dict built by the ``oops`` package: ``id``, ``type``,
``value``, ``tb_text``, ``time``, ``hostname``, ``reporter``, plus, for a
job, ``req_vars`` (its ``getOopsVars()``), ``job_id``, ``job_type``,
``operation`` and ``locals`` (the failing frame's local variables, as
truncated reprs). Values whose names contain a configured secret name
(``[error_reports] redact``) are replaced by ``<redacted>``.
"""

__all__ = [
    "ErrorReporter",
    "find_report",
    "fingerprint",
    "iter_reports",
    "read_report",
    "summarise",
]

import glob
import logging
import os
import re
import sys
from collections import OrderedDict
from datetime import datetime, timezone

import oops
import oops_datedir_repo
from oops_datedir_repo import serializer

from jobs.errors import NotFoundError

REDACTED = "<redacted>"
# scheme://user:password@ -- the password part.
_URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@",
                           re.IGNORECASE)
LOCAL_REPR_LIMIT = 200
# Log records carrying this attribute never become OOPS reports (they
# are about failing to write one).
NO_OOPS = "jobs_no_oops"

logger = logging.getLogger(__name__)

# Callables given every report any reporter of this process publishes
# (the CapturedOopsFixture uses it).
capture_listeners = []


def _truncated_repr(value):
    try:
        text = repr(value)
    except Exception as e:
        text = "<repr failed: %s>" % type(e).__name__
    if len(text) > LOCAL_REPR_LIMIT:
        text = text[:LOCAL_REPR_LIMIT] + "..."
    return text


def _safe_str(value):
    try:
        return str(value)
    except Exception as e:
        return "<str() failed: %s>" % type(e).__name__


class Redactor:
    """Hides the values of secrets, found by the names they go under.

    :param names: lower-case name fragments, e.g. ``("password",)``.
    """

    def __init__(self, names):
        self.names = tuple(names)
        if self.names:
            fragment = "|".join(re.escape(name) for name in self.names)
            # name = 'value', name: "value", 'name': value, name=value
            self._pattern = re.compile(
                r"""(?P<key>['"]?\w*(?:%s)\w*['"]?\s*[:=]\s*)"""
                r"""(?P<value>'[^']*'|"[^"]*"|[^\s,;)}\]]+)""" % fragment,
                re.IGNORECASE)
        else:
            self._pattern = None

    def is_secret(self, name):
        """True when `name` names a secret."""
        name = str(name).lower()
        return any(fragment in name for fragment in self.names)

    def text(self, text):
        """Return `text` with values assigned to secret names hidden, and
        the passwords of URIs (``scheme://user:password@host``)."""
        if self._pattern is None or not text:
            return text
        # Each pattern only where it can match: a worker's log lines hold
        # neither, and the patterns cost more than the rest of a line.
        if "://" in text:
            text = _URI_PASSWORD.sub(
                lambda m: m.group(1) + REDACTED + "@", text)
        lowered = text.lower()
        if any(name in lowered for name in self.names):
            text = self._pattern.sub(
                lambda m: m.group("key") + REDACTED, text)
        return text

    def data(self, value):
        """Return `value` (JSON-like: dicts, lists, text) with secrets
        hidden: a scalar under a secret name, and secrets in any text."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: REDACTED if self.is_secret(key) and not isinstance(
                    item, (dict, list, tuple)) else self.data(item)
                for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.data(item) for item in value)
        return value

    def pairs(self, pairs):
        """Return {name: str(value)} with secrets hidden."""
        return {
            str(name): REDACTED if self.is_secret(name)
            else self.text(_safe_str(value))
            for name, value in pairs}


def _innermost_locals(exc_info, redactor):
    tb = exc_info[2] if exc_info else None
    if tb is None:
        return {}
    while tb.tb_next is not None:
        tb = tb.tb_next
    return {
        name: REDACTED if redactor.is_secret(name)
        else redactor.text(_truncated_repr(value))
        for name, value in tb.tb_frame.f_locals.items()}


class ErrorReporter:
    """Files OOPS reports for one reporter into a date-dir repository.

    :param error_dir: the repository's folder (created when needed).
    :param reporter: e.g. ``JOBS-do_foo``.
    :param redact: names whose values are hidden.

    Every published report is also given to the callables in the module's
    `capture_listeners` (the CapturedOopsFixture uses it), and each
    report written to a file to those in `listeners` (the OOPS index:
    `jobs.oopsindex.IndexWriter`).
    """

    def __init__(self, error_dir, reporter, redact=()):
        self.error_dir = error_dir
        self.reporter = reporter
        self.redactor = Redactor(redact)
        self._repo = None
        self.listeners = []
        self.config = oops.Config()
        self.config.template["reporter"] = reporter
        self.config.publisher = self._publish

    def _publish(self, report):
        try:
            if self._repo is None:
                os.makedirs(self.error_dir, exist_ok=True)
                self._repo = oops_datedir_repo.DateDirRepo(
                    self.error_dir, stash_path=True)
            ids = self._repo.publish(report)
        except OSError as e:
            # The job's outcome must not depend on the report's: say it
            # in the log, where a human will see it, and go on.
            logger.error(
                "Could not write OOPS report to %s (%s): %s: %s\n%s",
                self.error_dir, e.strerror or e, report.get("type"),
                report.get("value"), report.get("tb_text", ""),
                extra={NO_OOPS: True})
            ids = []
        for listener in capture_listeners:
            listener(report)
        return ids

    def _finish(self, report, req_vars, extra):
        report["req_vars"] = self.redactor.pairs(req_vars)
        # Extra fields (log_tail, log_message, operation...) are text a
        # job or a log record made: redacted like the rest.
        report.update(self.redactor.data(extra))
        for key in ("value", "tb_text"):
            if isinstance(report.get(key), str):
                report[key] = self.redactor.text(report[key])
        self.config.publish(report)
        # Not written (the folder is unusable): callers read the id.
        report.setdefault("id", None)
        report.pop("datedir_repo_filepath", None)
        for listener in self.listeners if report["id"] else ():
            listener(report)
        return report

    def raising(self, exc_info=None, req_vars=(), **extra):
        """File a report for `exc_info` (default: the current exception).

        :param req_vars: (name, value) pairs, e.g. ``getOopsVars()``.
        :param extra: more top-level fields (``job_id``, ``operation``...).
        :return: the report (dict); its ``id`` is None when it could not
            be written.
        """
        exc_info = exc_info or sys.exc_info()
        report = self.config.create(dict(exc_info=exc_info))
        # str() of some exceptions raises; the report must not.
        if report.get("value") is None or not isinstance(report["value"], str):
            report["value"] = _safe_str(exc_info[1])
        report["locals"] = _innermost_locals(exc_info, self.redactor)
        return self._finish(report, req_vars, extra)

    def message(self, type_name, value, req_vars=(), **extra):
        """File a report that is not about an exception (a log record).

        :return: the report (dict).
        """
        report = self.config.create({})
        report["type"] = type_name
        report["value"] = value
        return self._finish(report, req_vars, extra)


def find_report(error_dir, oops_id):
    """Return the path of report `oops_id` under `error_dir`.

    :raises NotFoundError: when there is none.
    """
    if not re.match(r"^[\w.-]+$", oops_id or ""):
        raise NotFoundError("%r is not an OOPS id." % (oops_id,))
    matches = glob.glob(os.path.join(error_dir, "*", oops_id))
    if not matches:
        raise NotFoundError("No OOPS report %s in %s." % (oops_id, error_dir))
    return matches[0]


def read_report(error_dir, oops_id):
    """Return report `oops_id` (a dict) read back from `error_dir`.

    :raises NotFoundError: when there is no such report.
    """
    with open(find_report(error_dir, oops_id), "rb") as f:
        return serializer.read(f)


def report_time(report):
    """The report's ``time`` as an aware UTC datetime (None if it has
    none); reports store naive UTC."""
    value = report.get("time")
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def iter_reports(error_dir, since=None):
    """Every OOPS report under `error_dir`, oldest first.

    :param since: an aware datetime: only reports written since then.
    :return: a list of reports (dicts); files that are not reports (half
        written, foreign) are skipped.
    """
    reports = []
    for path in sorted(glob.glob(os.path.join(error_dir, "*", "OOPS-*"))):
        day = os.path.basename(os.path.dirname(path))
        if since is not None and day < since.strftime("%Y-%m-%d"):
            continue
        try:
            report = read_report(error_dir, os.path.basename(path))
        except Exception:
            continue  # a half-written or foreign file is not a report
        if since is not None and report.get("time") and (
                report_time(report) < since):
            continue
        reports.append(report)
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(reports, key=lambda r: report_time(r) or oldest)


def fingerprint(report):
    """What groups reports of one problem: the exception type and the
    frame where it was raised (``ValueError at foojob.py:12 in run``)."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)',
                        report.get("tb_text") or "")
    where = "%s:%s in %s" % (os.path.basename(frames[-1][0]), frames[-1][1],
                             frames[-1][2]) if frames else "?"
    return "%s at %s" % (report.get("type"), where)


def summarise(reports):
    """Group `reports` (oldest first) by `fingerprint`.

    :return: one dict per group, the most frequent first: ``fingerprint``,
        ``count``, ``first_seen``, ``last_seen`` (text) and ``example``
        (the id of the group's first report).
    """
    groups = OrderedDict()
    for report in reports:
        key = fingerprint(report)
        group = groups.setdefault(key, OrderedDict(
            fingerprint=key, count=0, first_seen=None, last_seen=None,
            example=report["id"]))
        group["count"] += 1
        seen = str(report_time(report))
        group["first_seen"] = group["first_seen"] or seen
        group["last_seen"] = seen
    return sorted(groups.values(), key=lambda g: -g["count"])
