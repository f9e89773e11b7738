"""Concurrency and rate limits of a job section, enforced by its claim
statement (not by counting in Python afterwards).

A section may set (its configuration, `jobs.settings.JobSection`):

- ``max_running``: at most N of its jobs RUNNING at once;
- ``max_running_per_key``: at most N RUNNING jobs per ``concurrency_key``
  (a job's creation option; jobs without one are not limited by it);
- ``rate_limit`` and ``rate_period``: at most N jobs claimed per period
  (a fixed window that starts with the first claim after the previous
  one ended; its state is the section's row of ``job_rate``).

The claim of a limited section counts its live RUNNING jobs (a lease not
yet expired: an orphan's slot is free) inside the same statement that
picks the jobs, and claims of one section are serialized — on
PostgreSQL by a transaction-scoped advisory lock taken in the statement
before (so the claim's snapshot sees every earlier claim), on SQLite by
the database's write lock — so the limits hold across all runners and
hosts. The claim reads at most `SCAN` ready jobs in priority order: a key
whose first ready job lies further down waits until those ahead drain.
"""

__all__ = ["Limits", "SCAN"]

from dataclasses import dataclass

from storm.expr import And, Or, Select, SQLRaw

from jobs.database import UTCNow, dialect, prepared
from jobs.database.stormext import compile_expr
from jobs.interfaces.job import JobStatus
from jobs.model import claims, claimsql
from jobs.model.job import Job, first_ready, ready_kinds

RUNNING = JobStatus.RUNNING
# How many ready jobs a limited claim reads, at most.
SCAN = 1000
CLAIMED_COLUMNS = (Job.id, Job.priority, Job.status, Job.date_started,
                   Job.claimed_by, Job.concurrency_key)


@dataclass(frozen=True)
class Limits:
    """A section's limits (0: none).

    :ivar section: the section's name (the key of its lock and window).
    """

    section: str
    max_running: int = 0
    max_running_per_key: int = 0
    rate_limit: int = 0
    rate_period: float = 1.0

    @classmethod
    def of(cls, settings):
        """The limits of a section's settings (None when it sets none)."""
        limits = cls(getattr(settings, "name", None) or "",
                     getattr(settings, "max_running", 0) or 0,
                     getattr(settings, "max_running_per_key", 0) or 0,
                     getattr(settings, "rate_limit", 0) or 0,
                     getattr(settings, "rate_period", 1.0) or 1.0)
        return limits if limits.active else None

    @property
    def active(self):
        return bool(self.max_running or self.max_running_per_key
                    or self.rate_limit)

    def claim_rows(self, store, condition, tables, limit, lease_seconds,
                   started, only=None):
        """Claim up to `limit` of the ready jobs matching `condition` (and
        being job `only`, when given: a Celery message's job) within the
        limits, which count every RUNNING job of `condition`; return the
        rows `jobs.model.claims.claim`
        makes its `Claimed` of."""
        row_locks = dialect(store).row_locks
        if row_locks:
            store.execute("SELECT pg_advisory_xact_lock(hashtext(?))",
                          ("jobs limits: " + self.section,))
        ctes, parameters = self._picked(store, condition, tables, limit,
                                        only)
        if dialect(store).returning:
            sets, set_parameters = claimsql.claim_sets(
                store, lease_seconds, started)
            ready, ready_parameters = compile_expr(store, Or(*ready_kinds()))
            rows = prepared.execute(
                store, "WITH %s %s" % (ctes, claimsql.claim_update(
                    sets, "picked", " AND " + ready)),
                parameters + [claims.claimer(store)] + set_parameters
                + ready_parameters).get_all()
        else:
            rows = claims.claim_rows(store, store.execute(
                "WITH %s SELECT job.id, job.attempt_count, job.max_retries,"
                " job.cancel_requested, job.status, job.priority,"
                " job.date_started, job.claimed_by FROM job JOIN picked ON"
                " picked.id = job.id" % ctes, parameters).get_all(),
                lease_seconds, started)
        if self.rate_limit and rows:
            self._count_claims(store, len(rows))
        return rows

    def _picked(self, store, condition, tables, limit, only=None):
        """``(SQL of the WITH list ending in "picked", parameters)``."""
        greatest, least = (("GREATEST", "LEAST") if dialect(store).row_locks
                           else ("max", "min"))
        running, parameters = compile_expr(store, Select(
            Job.concurrency_key, where=And(
                condition, Job.status == RUNNING, Job.lease_expires >= UTCNow()),
            tables=[Job] + list(tables)))
        ctes = ["running AS (%s)" % running]
        per_key = self.max_running_per_key
        if per_key:
            ctes.append(
                "saturated AS (SELECT concurrency_key FROM running WHERE"
                " concurrency_key IS NOT NULL GROUP BY concurrency_key"
                " HAVING count(*) >= %d)" % per_key)
        where = condition if only is None else And(condition, Job.id == only)
        if per_key:
            # Not the jobs of a key that is full already.
            where = And(where, SQLRaw(
                "(job.concurrency_key IS NULL OR job.concurrency_key NOT IN"
                " (SELECT concurrency_key FROM saturated))"))
        candidates, candidate_parameters = first_ready(
            store, CLAIMED_COLUMNS, where, tables, SCAN)
        ctes.append("candidates AS (%s)" % candidates)
        parameters += candidate_parameters
        room = [str(int(limit))]
        if self.max_running:
            room.append("%d - (SELECT count(*) FROM running)"
                        % self.max_running)
        if self.rate_limit:
            expired, expired_parameters = compile_expr(
                store, UTCNow(-self.rate_period))
            room.append(
                "coalesce((SELECT CASE WHEN window_start <= %s THEN %d ELSE"
                " %d - started END FROM job_rate WHERE section = ?), %d)"
                % (expired, self.rate_limit, self.rate_limit,
                   self.rate_limit))
            parameters += expired_parameters + [self.section]
        size = room[0] if len(room) == 1 else "%s(%s)" % (least,
                                                          ", ".join(room))
        if per_key:
            ctes.append(
                "ranked AS (SELECT c.*, row_number() OVER (PARTITION BY"
                " c.concurrency_key ORDER BY c.priority DESC, c.id) AS rank"
                " FROM candidates c)")
            ctes.append(
                "picked AS (SELECT r.id, r.status, r.date_started,"
                " r.claimed_by, r.priority FROM ranked r WHERE"
                " r.concurrency_key IS NULL OR r.rank + (SELECT count(*) FROM"
                " running x WHERE x.concurrency_key = r.concurrency_key) <="
                " %d ORDER BY r.priority DESC, r.id LIMIT %s(0, %s))"
                % (per_key, greatest, size))
        else:
            ctes.append(
                "picked AS (SELECT c.id, c.status, c.date_started,"
                " c.claimed_by, c.priority FROM candidates c ORDER BY"
                " c.priority DESC, c.id LIMIT %s(0, %s))" % (greatest, size))
        return ", ".join(ctes), parameters

    def _count_claims(self, store, count):
        """Count `count` claims in the section's current rate window (a
        new window when the last one is over)."""
        now, now_parameters = compile_expr(store, UTCNow())
        expired, expired_parameters = compile_expr(
            store, UTCNow(-self.rate_period))
        updated = store.execute(
            "UPDATE job_rate SET started = CASE WHEN window_start <= %s"
            " THEN ? ELSE started + ? END, window_start = CASE WHEN"
            " window_start <= %s THEN %s ELSE window_start END WHERE"
            " section = ?" % (expired, expired, now),
            expired_parameters + [count, count] + expired_parameters
            + now_parameters + [self.section]).rowcount
        if not updated:
            store.execute(
                "INSERT INTO job_rate (section, window_start, started) VALUES"
                " (?, %s, ?)" % now, [self.section] + now_parameters + [count])
