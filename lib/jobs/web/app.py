"""The Pyramid configuration of the dashboard: routes, views, templates,
security, CSRF, and one database transaction per request."""

__all__ = ["make_app"]

import transaction
from pyramid.config import Configurator
from pyramid.csrf import CookieCSRFStoragePolicy
from pyramid.httpexceptions import HTTPForbidden, HTTPUnauthorized
from pyramid.response import Response

from jobs.database import get_store, set_role
from jobs.errorlog import Redactor
from jobs.web import actions, views
from jobs.web.auth import DashboardSecurity

ROUTES = (
    ("overview", "/"),
    ("jobs", "/jobs"),
    ("jobs_action", "/jobs/action"),
    ("job", "/jobs/{id:\\d+}"),
    ("job_action", "/jobs/{id:\\d+}/action"),
    ("oops", "/oops"),
    ("oops_report", "/oops/{id}"),
    ("workers", "/workers"),
    ("schedules", "/schedules"),
    ("metrics", "/metrics"),
)


def transaction_tween(handler, registry):
    """Each request reads in a transaction of its own, ended after it
    (actions commit their own batches), as the login role."""

    def tween(request):
        set_role(None)
        try:
            return handler(request)
        finally:
            transaction.abort()

    return tween


def forbidden(request):
    """401 asking for basic credentials (or 403 without basic auth)."""
    settings = request.registry.settings["jobs.web"]
    if settings.user:
        response = HTTPUnauthorized()
        response.headers["WWW-Authenticate"] = 'Basic realm="jobs"'
        return response
    return HTTPForbidden("Authentication is required (a trusted proxy's"
                         " header).")


def make_app(config, settings):
    """See `jobs.web.make_app`."""
    pyramid = Configurator(settings={
        "jobs.config": config, "jobs.web": settings,
        "jobs.redactor": Redactor(config.redact),
        "jinja2.directories": "jobs.web:templates",
        "jinja2.filters": "when = jobs.web.views:when_filter",
    })
    pyramid.include("pyramid_jinja2")
    pyramid.add_jinja2_renderer(".jinja2")
    pyramid.set_security_policy(DashboardSecurity(settings))
    pyramid.set_default_permission("view")
    pyramid.set_csrf_storage_policy(CookieCSRFStoragePolicy(
        cookie_name="jobs_csrf", samesite="Strict"))
    pyramid.set_default_csrf_options(require_csrf=True)
    pyramid.add_tween("jobs.web.app.transaction_tween")
    pyramid.add_request_method(lambda request: get_store(), "store",
                               reify=True)
    pyramid.add_static_view("static", "jobs.web:static", cache_max_age=3600)
    for name, pattern in ROUTES:
        pyramid.add_route(name, pattern)
    views.add_views(pyramid)
    actions.add_views(pyramid)
    pyramid.add_forbidden_view(forbidden)
    pyramid.add_notfound_view(
        lambda request: Response("Not found.", status=404,
                                 content_type="text/plain"))
    return pyramid.make_wsgi_app()
