"""The dashboard's actions (POST only, CSRF-checked by Pyramid): retry,
cancel, suspend or resume one job, or every job the list's filter
matches (`jobs.operations`). Each answers with a redirect to the page
it came from, saying what was done."""

__all__ = ["add_views"]

from urllib.parse import urlencode

from pyramid.httpexceptions import HTTPBadRequest, HTTPSeeOther

from jobs.operations import ACTIONS, apply, apply_to_filter


def _action(request):
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        raise HTTPBadRequest("Unknown action %r." % request.POST.get(
            "action"))
    return action


def _said(done, requested, action):
    text = "%d jobs %s." % (done, action.done)
    if requested:
        text += (" %d running jobs: cancel requested (their runners stop"
                 " them)." % requested)
    return text


def job_action(request):
    import transaction
    action = _action(request)
    job_id = int(request.matchdict["id"])
    moved, requested = apply(request.store, action, [job_id])
    transaction.commit()
    if requested:
        message = "Job %d is running: cancel requested." % job_id
    elif moved:
        message = "Job %d is now %s." % (job_id, action.target.title)
    else:
        message = "Job %d cannot be %s now." % (job_id, action.done)
    return HTTPSeeOther(request.route_url(
        "job", id=job_id, _query={"message": message}))


def jobs_action(request):
    from jobs.web.views import job_filter_of
    action = _action(request)
    chosen, pairs, error = job_filter_of(request)
    if error:
        raise HTTPBadRequest(error)
    if chosen.empty:
        raise HTTPBadRequest("Choose jobs with a filter first: an action"
                             " on every job is not offered.")
    config = request.registry.settings["jobs.config"]
    moved, requested = apply_to_filter(request.store, config, action,
                                       chosen)
    return HTTPSeeOther(request.route_url("jobs") + "?" + urlencode(
        pairs + [("message", _said(moved, requested, action))]))


def add_views(pyramid):
    """Register the actions on `pyramid` (a Configurator)."""
    pyramid.add_view(job_action, route_name="job_action",
                     request_method="POST")
    pyramid.add_view(jobs_action, route_name="jobs_action",
                     request_method="POST")
