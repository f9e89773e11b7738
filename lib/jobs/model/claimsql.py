"""The SQL of a claim on PostgreSQL (`jobs.model.claims.claim` sends it).

One statement: the ready jobs read by `jobs.model.job.first_ready`'s
locking sub-selects (``candidates``), updated to RUNNING as a new attempt
with a lease (`claim_update`, `claim_sets`), with their context rows when
the source reads them with the claim (`jobs.model.lean.ContextJoin`). A
completing claim first records the outcome of the job the runner has
just finished (`jobs.model.records.Completion`), in the same statement.
"""

__all__ = ["claim_sets", "claim_statement", "claim_update",
           "completing_statement"]

from jobs.interfaces.job import JobStatus
from jobs.model.fencing import now as now_sql
from jobs.model.job import Job, first_ready
from jobs.model.records import Completion

RUNNING = JobStatus.RUNNING

# A claim's attempt number: the next, except for an orphan whose lost
# claim never started (that attempt never ran; its number is reused).
_ATTEMPT = ("CASE WHEN job.status = %d AND job.date_started IS NULL"
            " THEN job.attempt_count ELSE job.attempt_count + 1 END"
            % RUNNING.value)


def claim_sets(store, lease_seconds, started):
    """``[(column name, SQL)], parameters`` of a claim's SET clause. The
    first parameter is ``claimed_by``'s, given at each claim."""
    lease, parameters = now_sql(store, lease_seconds)
    sets = [("claimed_by", "?"), ("status", str(RUNNING.value)),
            ("attempt_count", _ATTEMPT), ("lease_expires", lease),
            ("date_finished", "NULL")]
    if started:
        start, start_parameters = now_sql(store)
        sets.append(("date_started", start))
        parameters += start_parameters
    else:
        sets.append(("date_started", "NULL"))
    return sets, parameters


def claim_statement(store, condition, tables, limit, lease_seconds,
                    started=False, load=None):
    """``(SQL, before, after)`` of a claim (see `jobs.model.claims.claim`
    for the arguments): its parameters are ``before + [claimed_by] +
    after`` (`jobs.model.claims.claimer`). Also what
    ``benchmarks/raw_ceiling.py`` sends, with no framework around it."""
    update, before, after = _update(store, condition, tables, limit,
                                    lease_seconds, started, "")
    if load is not None:
        update = load.joined(update)
    return update, before, after


def completing_statement(store, condition, tables, limit, lease_seconds,
                         started=False, load=None):
    """``(SQL, head, before, after)`` of a claim that first records a
    `Completion`: its parameters are ``head + completion.values() +
    before + [claimed_by] + after``.

    Its rows are those of the claim, each after a first column that says
    whether the completion was recorded (1 or 0); when nothing was
    claimed, one row holds that column and NULLs. The job it completes is
    not claimed again by the same statement (its lease may have lapsed
    while it ran: two changes of one row in one statement are not
    ordered)."""
    done, head = Completion.update(store)
    update, before, after = _update(
        store, condition, tables, limit, lease_seconds, started,
        " AND job.id NOT IN (SELECT id FROM completed)")
    select = load.select("claimed_rows") if load is not None \
        else "SELECT * FROM claimed_rows"
    return ("WITH completed AS (%s), claimed_rows AS (%s) SELECT"
            " completion.recorded, claim.* FROM (SELECT count(*) AS"
            " recorded FROM completed) AS completion LEFT JOIN (%s) AS"
            " claim ON true" % (done, update, select), head, before, after)


def _update(store, condition, tables, limit, lease_seconds, started, also):
    candidates, before = _candidates(store, condition, tables, limit)
    sets, after = claim_sets(store, lease_seconds, started)
    return ("WITH claimed AS (%s) %s" % (candidates, claim_update(
        sets, also=also)), before, after)


def claim_update(sets, source="claimed", also=""):
    """The ``UPDATE`` of a claim that gives the jobs of the WITH query
    `source` (``id, status, date_started, claimed_by`` of each, locked)
    the values of `sets` (`claim_sets`), where `also` (SQL starting with
    AND) holds too; it returns the claim's eight columns.

    The rows to update are also found by ``job.id = ANY(ARRAY(SELECT id
    FROM claimed))``: an index condition whose few rows the planner can
    see. Joined to ``claimed`` alone, the planner reckons that a hash of
    the whole job table is cheaper than 200 index look-ups, so every
    claim of a group read the table through: 5 of a 200-job claim's 11 ms
    at 10,000 jobs (BENCHMARKS.md, "The claim's plan")."""
    return (
        "UPDATE job SET %s FROM %s AS claimed WHERE job.id = claimed.id AND"
        " job.id = ANY(ARRAY(SELECT id FROM %s))%s RETURNING job.id,"
        " job.attempt_count, job.max_retries, job.cancel_requested,"
        " claimed.status AS previous, job.priority, claimed.date_started"
        " IS NOT NULL AS had_started, claimed.claimed_by AS holder"
        % (", ".join("%s = %s" % pair for pair in sets), source, source,
           also))


def _candidates(store, condition, tables, limit):
    """SQL selecting ``(id, status, date_started, claimed_by)`` of the
    jobs to claim.

    Ready jobs are read by `jobs.model.job.first_ready`'s sub-selects,
    each locking, in the order of its index and stopping after `limit`
    rows; the best `limit` of them are claimed. One condition with an OR
    between the kinds makes the planner read, join and sort every waiting
    job at each claim (BENCHMARKS.md, "scale"). The waiting jobs are
    split in two:

    - those with no ``scheduled_start``, read in priority order from an
      index of only them (``job__waiting__undelayed__idx``);
    - those whose ``scheduled_start`` has come, read by a range of the
      ``job__waiting__scheduled__idx`` index: a million jobs scheduled
      for tomorrow are not walked past at every claim (110 ms a claim
      with one index over all waiting jobs).
    """
    sql, parameters = first_ready(
        store, (Job.id, Job.priority, Job.status, Job.date_started,
                Job.claimed_by), condition, tables, limit,
        lock="FOR NO KEY UPDATE OF job SKIP LOCKED")
    return ("SELECT ready.id, ready.status, ready.date_started,"
            " ready.claimed_by FROM (%s) AS ready" % sql), parameters
