"""How a runner takes jobs from any source, and loads them.

A source of ours says which jobs are its own in SQL (`jobCondition`), and
a batch of them is claimed with one statement (``claimReady``). A source
that only iterates its ready jobs — the seed's `IJobSource`: ``iterReady``
and ``contextManager``, perhaps ``get`` — is claimed job by job as it
yields them, with the same fenced statement narrowed to each id
(`claim_each`). Loading follows the same rule: ``getJobs`` for many ids,
else ``get`` for each; a row that cannot be loaded (``json_data`` that is
not JSON, a job type with no class) becomes an `UnloadableJob`, which the
runner fails with a `JobLoadError` OOPS instead of stopping.
"""

__all__ = [
    "claim_each",
    "claim_one",
    "claim_ready",
    "context_of",
    "load_jobs",
    "loads_by_id",
    "takes_completion",
]

import contextlib
import inspect
import logging
import time

from jobs.database import get_store
from jobs.errors import JobLoadError, NotFoundError, SectionError
from jobs.model import claims
from jobs.model.job import Job
from jobs.model.runnable import LOAD_ERRORS, UnloadableJob

logger = logging.getLogger(__name__)


def claim_each(jobs, limit, lease_seconds, started=False):
    """Claim up to `limit` of `jobs` (runnable jobs, e.g. a source's
    ``iterReady()``), each with the fenced claim narrowed to its id.

    A job another runner took meanwhile is skipped. Each `Claimed` carries
    the job it claimed (``job``), already loaded.
    """
    store = get_store()
    taken = []
    if limit < 1:
        return taken
    for job in jobs:
        claimed = claims.claim(store, Job.id == job.job_id, (), 1,
                               lease_seconds, started=started)
        if claimed:
            taken.append(claimed[0]._replace(job=job))
            if len(taken) >= limit:
                break  # before taking another job from `jobs`
        else:
            logger.debug("Could not claim job %d: another runner took it.",
                         job.job_id)
    return taken


def claim_ready(source, limit, lease_seconds, started=False, tally=None,
                limits=None, completing=None):
    """Claim up to `limit` of `source`'s ready jobs: its ``claimReady``,
    or (a source with only ``iterReady``) `claim_each`. Leaves the
    transaction to the caller (commit it).

    :param started: record the claimed jobs' starts at once (see
        `jobs.model.claims.claim`).
    :param tally: the runner's `jobs.metrics.tally.Tally`, which counts
        how long the claim took.
    :param limits: the section's `jobs.model.limits.Limits`, or None.
    :param completing: a `jobs.model.records.Completion` for the claim to
        record in its statement, given to a ``claimReady`` that takes it
        (it is left unrecorded otherwise).
    :raises SectionError: when the section sets limits and its source
        cannot claim by SQL (``claimReady``).
    """
    began = time.perf_counter()
    try:
        claim = getattr(source, "claimReady", None)
        if claim is not None:
            try:
                return _claim(claim, started, limits, limit, lease_seconds,
                              completing=completing)
            except NotImplementedError:
                pass
        _unlimited(source, limits)
        return claim_each(source.iterReady(), limit, lease_seconds, started)
    finally:
        if tally is not None:
            tally.claim(time.perf_counter() - began)


def takes_completion(source):
    """Whether `source`'s claim can record a job's completion in its
    statement (its ``claimReady`` takes `completing`)."""
    claim = getattr(source, "claimReady", None)
    return claim is not None and _takes(claim, "completing")


def _claim(claim, started, limits, *args, completing=None):
    """Call a source's `claim` method, with `started` and `limits` only
    when set (a source of an older interface takes no such argument), and
    `completing` only when set and taken."""
    keywords = {}
    if started:
        keywords["started"] = True
    if limits is not None:
        keywords["limits"] = limits
    if completing is not None and _takes(claim, "completing"):
        keywords["completing"] = completing
    return claim(*args, **keywords)


# (function, keyword) -> whether the function takes that keyword.
_taken = {}


def _takes(function, keyword):
    key = (getattr(function, "__func__", function), keyword)
    taken = _taken.get(key)
    if taken is None:
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            parameters = {}
        taken = _taken[key] = keyword in parameters or any(
            parameter.kind is parameter.VAR_KEYWORD
            for parameter in parameters.values())
    return taken


def _unlimited(source, limits):
    if limits is not None:
        raise SectionError(
            "Section %s sets limits (max_running, max_running_per_key or"
            " rate_limit), which its source %r cannot keep: it has no"
            " jobCondition to claim by." % (limits.section, source))


def claim_one(source, job_id, lease_seconds, started=False, limits=None):
    """Claim job `job_id` if it is one of `source`'s ready jobs (what a
    Celery message asks) and `limits` allow: its ``claimJob``, else
    `claim_each` over ``iterReady``."""
    claim = getattr(source, "claimJob", None)
    if claim is not None:
        try:
            return _claim(claim, started, limits, job_id, lease_seconds)
        except NotImplementedError:
            pass
    _unlimited(source, limits)
    return claim_each((job for job in source.iterReady()
                       if job.job_id == job_id), 1, lease_seconds, started)


def context_of(source):
    """`source`'s ``contextManager()``, entered around a whole run (a
    source without one gets a context that does nothing)."""
    make = getattr(source, "contextManager", None)
    return make() if make is not None else contextlib.nullcontext()


def loads_by_id(source):
    """Whether `source` can load a job from its id alone (``getJobs`` or
    ``get``): what a child process or a Celery worker needs."""
    if getattr(source, "jobCondition", None) is not None:
        try:
            source.jobCondition()
            return True
        except NotImplementedError:
            pass
    return callable(getattr(source, "get", None))


def load_jobs(source, job_ids):
    """The runnable jobs of `job_ids` (claimed by this process), in that
    order, a row that cannot be loaded as an `UnloadableJob`; a job whose
    rows are gone is left out."""
    job_ids = list(job_ids)
    get_jobs = getattr(source, "getJobs", None)
    if get_jobs is not None:
        try:
            return get_jobs(job_ids)
        except NotImplementedError:
            pass
        except LOAD_ERRORS as e:
            if len(job_ids) > 1:
                return [job for job_id in job_ids
                        for job in load_jobs(source, [job_id])]
            return _unloadable(source, job_ids[0], e)
    return [job for job_id in job_ids for job in _get(source, job_id)]


def _get(source, job_id):
    try:
        return [source.get(job_id)]
    except NotFoundError:
        return []
    except LOAD_ERRORS as e:
        return _unloadable(source, job_id, e)


def _unloadable(source, job_id, error):
    row = get_store().get(Job, job_id)
    if row is None:
        return []
    return [UnloadableJob(row, JobLoadError(
        "Cannot load job %d for %s: %s: %s" % (
            job_id, getattr(source, "__name__", type(source).__name__),
            type(error).__name__, error)))]
