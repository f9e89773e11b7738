"""The dashboard's pages (GET): what each shows is in `jobs.web`."""

__all__ = ["add_views", "job_filter_of", "when_filter"]

import json
from datetime import datetime, timedelta
from urllib.parse import urlencode

from pyramid.csrf import get_csrf_token
from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from jobs import counts
from jobs.cli.formatting import parse_date
from jobs.errors import CommandError, JobsError
from jobs.interfaces.job import JobStatus
from jobs.jobfilter import JobFilter
from jobs.kinds import NO_SECTION, sections_of_kinds
from jobs.model import oopsreport
from jobs.model.job import Job
from jobs.oopsindex import read_indexed
from jobs.operations import ACTIONS
from jobs.web import queries
from jobs.web.charts import throughput_svg

PAGE_SIZE = 50
STATUSES = list(JobStatus.items)


def when_filter(value):
    """A datetime as ``YYYY-MM-DD HH:MM:SS`` (UTC); anything else as is."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else value


def _config(request):
    return request.registry.settings["jobs.config"]


def _hide(request):
    return request.registry.settings["jobs.redactor"]


def page(request, **values):
    """What every template gets, plus `values`."""
    settings = request.registry.settings["jobs.web"]
    values.update(
        user=request.identity, refresh=settings.refresh,
        message=request.params.get("message"),
        csrf_token=get_csrf_token(request))
    return values


def overview(request):
    store, config = request.store, _config(request)
    snap = counts.snapshot(store, config)
    by_section = snap.by_section()
    sections = sorted({section for section, _ in by_section}
                      | set(config.job_section_names))
    rows = [(section, [by_section.get((section, status), 0)
                       for status in STATUSES])
            for section in sections]
    totals = snap.totals()
    hour = queries.throughput(store, timedelta(hours=1), 16)[1]
    day = queries.throughput(store, timedelta(days=1), 15)[1]
    estimated = {(snap.sections.get(kind, NO_SECTION), status)
                 for kind, status in snap.estimated}
    return page(
        request, title="Overview", statuses=STATUSES, rows=rows,
        totals=[totals.get(status, 0) for status in STATUSES],
        estimated=estimated, snap=snap,
        hour_chart=throughput_svg(hour, "Jobs per minute, last hour"),
        day_chart=throughput_svg(day, "Jobs per minute, last day"
                                 " (10-minute averages)", per=10),
        hour_totals=[sum(b[1] for b in hour), sum(b[2] for b in hour)],
        day_totals=[sum(b[1] for b in day), sum(b[2] for b in day)])


def job_filter_of(request):
    """The `JobFilter` of the request's filter parameters, its
    ``(name, value)`` pairs (for links), and an error message or None."""
    params = request.params
    pairs, error = [], None
    statuses = []
    for name in params.getall("status"):
        if name.upper() in JobStatus.items.mapping:
            statuses.append(JobStatus.items[name.upper()])
            pairs.append(("status", name))
    values = {}
    for key in ("section", "kind", "fingerprint", "since", "until"):
        value = (params.get(key) or "").strip()
        if value:
            values[key] = value
            pairs.append((key, value))
    dates = {}
    for key in ("since", "until"):
        if key in values:
            try:
                dates[key] = parse_date(values[key])
            except CommandError as e:
                error = str(e)
    return JobFilter(
        sections=(values["section"],) if "section" in values else (),
        statuses=tuple(statuses),
        kinds=(values["kind"],) if "kind" in values else (),
        since=dates.get("since"), until=dates.get("until"),
        fingerprint=values.get("fingerprint")), pairs, error


def jobs(request):
    store, config = request.store, _config(request)
    chosen, pairs, error = job_filter_of(request)
    before = request.params.get("before")
    before = int(before) if before and before.isdigit() else None
    found, next_before = ([], None) if error else chosen.page(
        store, config, before, PAGE_SIZE)
    sections = sections_of_kinds(store, config)
    return page(
        request, title="Jobs", jobs=found, sections=sections,
        section_names=sorted(set(sections.values())
                             | set(config.job_section_names)),
        kinds=sorted(sections), statuses=STATUSES, chosen=chosen,
        filter_query=urlencode(pairs), filter_pairs=pairs, error=error,
        next_link=("?" + urlencode(pairs + [("before", next_before)])
                   if next_before else None),
        first_link=("?" + urlencode(pairs)) if before else None,
        actions=sorted(ACTIONS))


def job(request):
    store, config = request.store, _config(request)
    job_id = int(request.matchdict["id"])
    row = store.get(Job, job_id)
    if row is None:
        raise HTTPNotFound("No job %d." % job_id)
    hide = _hide(request)
    section = sections_of_kinds(store, config).get(row.kind, NO_SECTION)
    fields = [(name, hide.data(value) if name not in ("log", "progress")
               else None) for name, value in queries.row_values(row)]
    fields = [(name, value) for name, value in fields
              if name not in ("log", "progress")]
    progress = None
    if row.progress:
        try:
            progress = hide.data(json.loads(row.progress))
        except ValueError:
            progress = None
    reports = oopsreport.list_reports(store, job_ids=[job_id])
    return page(
        request, title="Job %d" % job_id, job=row, section=section,
        fields=fields,
        context=[(name, hide.data(value)) for name, value in
                 queries.context_of(store, config, section, job_id)],
        dependencies=queries.dependency_tree(store, job_id),
        progress=progress, log=hide.text(row.log or ""),
        reports=reports, here=config.error_host,
        actions=[name for name, action in sorted(ACTIONS.items())
                 if row.status in action.acts_on])


def oops(request):
    store = request.store
    since = None
    if request.params.get("since"):
        try:
            since = parse_date(request.params["since"])
        except CommandError:
            since = None
    return page(request, title="OOPS reports",
                groups=oopsreport.summarise(store, since),
                recent=oopsreport.list_reports(store, limit=20)[::-1],
                urlencode=urlencode)


def oops_report(request):
    store, config = request.store, _config(request)
    oops_id = request.matchdict["id"]
    row = store.get(oopsreport.OopsReport, oops_id)
    try:
        report = _hide(request).data(read_indexed(store, config, oops_id))
        elsewhere = None
    except JobsError as e:
        if row is None:
            raise HTTPNotFound(str(e))
        report, elsewhere = None, str(e)
    return page(request, title=oops_id, oops_id=oops_id, row=row,
                report=report, elsewhere=elsewhere)


def listing_page(read, title):
    def view(request):
        return page(request, title=title,
                    found=read(request.store, _config(request)))
    return view


def metrics(request):
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from jobs.metrics.collector import registry
    config = _config(request)
    text = generate_latest(registry(lambda: (request.store, config)))
    response = Response(body=text)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_views(pyramid):
    """Register the pages on `pyramid` (a Configurator)."""
    for route, view, template in (
            ("overview", overview, "overview.jinja2"),
            ("jobs", jobs, "jobs.jinja2"),
            ("job", job, "job.jinja2"),
            ("oops", oops, "oops.jinja2"),
            ("oops_report", oops_report, "oops_report.jinja2"),
            ("workers", listing_page(queries.workers, "Workers"),
             "table.jinja2"),
            ("schedules", listing_page(queries.schedules, "Schedules"),
             "table.jinja2")):
        pyramid.add_view(view, route_name=route, renderer=template,
                         request_method="GET")
    pyramid.add_view(metrics, route_name="metrics", request_method="GET")
