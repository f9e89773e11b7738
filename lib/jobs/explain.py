"""Why a job is not running (``jobs explain ID``).

`explain` looks at the job the way a runner would and returns every
reason that applies, each ``(code, sentence)``:

- ``finished``: COMPLETED, FAILED or CANCELLED (``jobs retry`` runs a
  failed job again); ``suspended``: SUSPENDED (``jobs resume``);
- ``scheduled``: due later; ``lease``: a lease is held (by which worker,
  when the ``worker`` table says); ``running``: it is running;
- ``lease-expired``: RUNNING with an expired lease: its runner was lost,
  and the next claim takes it over;
- ``dependency``: a job it depends on has not COMPLETED;
- ``limit``: its section is at its ``max_running``, its concurrency key
  at ``max_running_per_key``, or the section's rate window is full;
- ``orphaned``: no configured section's source sees it (its context row
  was deleted, or its section removed): no runner will take it;
- ``privilege``: its section's database role lacks a privilege the
  section's runner needs (PostgreSQL);
- ``section-lock``: a cron run of its section holds the section's lock
  (a second cron run would wait for it);
- ``ready``: none of the above: a runner of its section takes it at its
  next claim.
"""

__all__ = ["explain"]

import fcntl
import os
from datetime import timedelta

from jobs.database import database_now, dialect
from jobs.database.columns import UTCDateTimeVariable
from jobs.errors import JobsError
from jobs.interfaces.job import JobStatus
from jobs.kinds import NO_SECTION, sections_of_kinds
from jobs.model import workers
from jobs.model.limits import Limits
from jobs.model.job import Job

FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def explain(store, config, job):
    """The reasons `job` (a `Job` row) is not running, or is about to."""
    now = database_now(store)
    status = job.status
    if status in FINISHED:
        return [("finished", "Job %d is %s: it runs again only if retried"
                 " (jobs retry %d)." % (job.id, status.title, job.id)
                 if status is JobStatus.FAILED else
                 "Job %d is %s: it will not run again." % (
                     job.id, status.title))]
    if status is JobStatus.SUSPENDED:
        return [("suspended", "Job %d is Suspended: jobs resume %d makes it"
                 " Waiting." % (job.id, job.id))]
    section = sections_of_kinds(store, config).get(job.kind, NO_SECTION)
    reasons = []
    if status is JobStatus.RUNNING:
        if job.lease_expires is not None and job.lease_expires < now:
            reasons.append(("lease-expired", (
                "Job %d is Running but its lease expired at %s: its runner"
                " was lost; the next claim of section %s takes it over."
                % (job.id, _when(job.lease_expires), section))))
        else:
            reasons.append(("running", "Job %d is running (attempt %d), its"
                            " lease held until %s%s." % (
                                job.id, job.attempt_count,
                                _when(job.lease_expires),
                                _holder(store, job.id))))
    else:
        if job.scheduled_start is not None and job.scheduled_start > now:
            reasons.append(("scheduled", "Job %d is scheduled later: at %s"
                            " (in %d s)." % (
                                job.id, _when(job.scheduled_start),
                                (job.scheduled_start - now).total_seconds())))
        if job.lease_expires is not None and job.lease_expires > now:
            reasons.append(("lease", "Job %d is leased until %s%s." % (
                job.id, _when(job.lease_expires), _holder(store, job.id))))
        reasons += _dependencies(store, job)
        reasons += _limit(store, config, section, job)
    if section == NO_SECTION or not _seen(store, config, section, job.id):
        reasons.append(("orphaned", "Job %d is orphaned: no configured"
                        " section's source sees it (its context row was"
                        " deleted, or its section removed); no runner will"
                        " take it." % job.id))
    else:
        reasons += _privileges(store, config, section, job)
        reasons += _section_lock(config, section)
    if not reasons:
        reasons.append(("ready", "Job %d is ready: a runner of section %s"
                        " takes it at its next claim (is one running?)."
                        % (job.id, section)))
    return reasons


def _when(value):
    return value.isoformat(" ", "seconds") if value is not None else "-"


def _holder(store, job_id):
    """", by the worker W on host H" when a runner's row in the
    ``worker`` table holds `job_id` (at its last beat)."""
    for row in workers.find(store):
        if any(held == job_id for held, _ in row.held):
            return ", by the worker %s on host %s" % (row.pid, row.host)
    return ""


def _dependencies(store, job):
    rows = store.execute(
        "SELECT d.depends_on, j.status FROM job_dependency d"
        " JOIN job j ON j.id = d.depends_on"
        " WHERE d.job = ? AND j.status <> ? ORDER BY d.depends_on",
        (job.id, JobStatus.COMPLETED.value))
    return [("dependency", "Job %d is waiting on dependency %d (%s)." % (
        job.id, other, JobStatus.items[status].title))
        for other, status in rows]


def _limit(store, config, section, job):
    """The section's limits (`jobs.model.limits`) that hold `job` back:
    its RUNNING jobs (leases not expired) at ``max_running``, those of the
    job's ``concurrency_key`` at ``max_running_per_key``, its rate window
    full."""
    try:
        limits = Limits.of(config.job_section(section))
    except JobsError:
        return []
    if limits is None:
        return []
    now = database_now(store)
    kinds = [kind for kind, name in sections_of_kinds(store, config).items()
             if name == section]
    running = store.find(Job, Job.kind.is_in(kinds),
                         Job.status == JobStatus.RUNNING,
                         Job.lease_expires >= now)
    reasons = []
    if limits.max_running and running.count() >= limits.max_running:
        reasons.append(("limit", "Section %s is at its concurrency limit:"
                        " %d running, max_running %d." % (
                            section, running.count(), limits.max_running)))
    key = job.concurrency_key
    if limits.max_running_per_key and key is not None:
        same = running.find(Job.concurrency_key == key).count()
        if same >= limits.max_running_per_key:
            reasons.append(("limit", "Concurrency key %r is at its limit:"
                            " %d running, max_running_per_key %d." % (
                                key, same, limits.max_running_per_key)))
    if limits.rate_limit:
        window = store.execute(
            "SELECT window_start, started FROM job_rate WHERE section = ?",
            (section,)).get_one()
        if window is not None:
            start = UTCDateTimeVariable(value=window[0], from_db=True).get()
            ends = start + timedelta(seconds=limits.rate_period)
            if window[1] >= limits.rate_limit and ends > now:
                reasons.append(("limit", "Section %s is at its rate limit:"
                                " %d started since %s, rate_limit %d per"
                                " %g s." % (section, window[1], _when(start),
                                            limits.rate_limit,
                                            limits.rate_period)))
    return reasons


def _seen(store, config, section, job_id):
    from jobs.sections import find_section_source
    try:
        condition, tables = find_section_source(config, section).jobCondition()
    except (JobsError, AttributeError, NotImplementedError):
        return True  # its source cannot say: assume it sees it
    return store.using(Job, *tables).find(
        Job.id, condition, Job.id == job_id).any() is not None


def _privileges(store, config, section, job):
    if not dialect(store).roles:
        return []
    from jobs.roles import RoleError, plan_roles
    try:
        dbuser = config.job_section(section).dbuser
        if dbuser is None:
            return []
        plan = plan_roles(config).get(dbuser)
    except (JobsError, RoleError):
        return []
    exists = store.execute("SELECT 1 FROM pg_roles WHERE rolname = ?",
                           (dbuser,)).get_one()
    if exists is None:
        return [("privilege", "Section %s runs as role %s, which does not"
                 " exist (jobs db roles makes it)." % (section, dbuser))]
    missing = []
    for table, privileges in sorted(plan[1].items()):
        for privilege in sorted(privileges):
            name, _, column = privilege.partition(" (")
            columns = [c.strip() for c in column.rstrip(")").split(",")
                       if c.strip()]
            for target in columns or [None]:
                if not _has(store, dbuser, table, name, target):
                    missing.append("%s on %s%s" % (
                        name, table, "(%s)" % target if target else ""))
    reasons = [("privilege", "Section %s's role %s lacks %s (jobs db roles"
                " grants them)." % (section, dbuser, ", ".join(missing)))
               ] if missing else []
    # Row security (migration 0014): a section role (one with kinds
    # recorded) sees those kinds only.
    if not store.execute(
            "SELECT job_role_kinds(?) IS NULL OR EXISTS (SELECT 1 FROM job"
            " WHERE id = ? AND kind LIKE ANY (job_role_kinds(?)))",
            (dbuser, job.id, dbuser)).get_one()[0]:
        reasons.append(("privilege", "Job %d's kind (%s) is not one of role"
                        " %s's kinds of job: row security hides it from"
                        " section %s (jobs db roles records them)." % (
                            job.id, job.kind, dbuser, section)))
    return reasons


def _has(store, role, table, privilege, column):
    if column is None:
        return store.execute("SELECT has_table_privilege(?, ?, ?)",
                             (role, table, privilege)).get_one()[0]
    return store.execute("SELECT has_column_privilege(?, ?, ?, ?)",
                         (role, table, column, privilege)).get_one()[0]


def _section_lock(config, section):
    path = os.path.join(config.lock_dir, "jobs-run_jobs-%s.lock" % section)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return []
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return []
    except BlockingIOError:
        pid = os.read(fd, 32).decode("ascii", "replace").strip()
        return [("section-lock", "A cron run of section %s holds its lock"
                 " (%s, process %s): another cron run waits for it."
                 % (section, path, pid or "?"))]
    finally:
        os.close(fd)
