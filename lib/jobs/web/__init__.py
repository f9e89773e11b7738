"""The dashboard: ``jobs web`` (the ``web`` extra).

A Pyramid application (`make_app`) served by waitress (`jobs.cli.web`),
Jinja2 templates and a stylesheet shipped in the package, charts drawn as
SVG on the server, no JavaScript framework (one small script reloads a
page whose refresh box is ticked). Pages:

- ``/``: jobs per section and status, the ready queue and its oldest
  job, throughput over the last hour and day;
- ``/jobs``: the job list, filtered and paginated by id (keyset), with
  bulk actions; ``/jobs/ID``: one job, every field, its arguments,
  result, dependencies, progress, log tail and OOPS reports;
- ``/oops``: reports grouped by fingerprint; ``/oops/ID``: one report;
- ``/workers``, ``/schedules``: the live workers and schedules (when the
  database has their tables);
- ``/metrics``: Prometheus metrics (`jobs.metrics.collector`).

Actions (retry, cancel, suspend, resume; one job or every job a filter
matches) are POST only, with Pyramid's CSRF check. Who may look and act
is `jobs.web.auth`'s policy. Secrets are redacted as everywhere
(`jobs.errorlog.Redactor`).
"""

__all__ = ["make_app"]


def make_app(config, settings=None):
    """The dashboard's WSGI application over the current database.

    :param config: the `jobs.config.JobsConfig`.
    :param settings: a `jobs.settings.WebSettings` (default: ``[web]``).
    """
    from jobs.web.app import make_app as make
    return make(config, settings or config.web)
