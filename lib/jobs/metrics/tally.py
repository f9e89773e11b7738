"""What this process's runners count: plain integers, read when scraped.

The runner is a hot path, so a job costs it a dictionary look-up, a
`bisect` and three additions (`Tally.outcome`), nothing more: no lock,
no metric object, no label lookup. A `prometheus_client` collector
(`jobs.metrics.collector`) turns the tallies into metrics when
``/metrics`` is read. Tallies live as long as the process (a worker makes
a runner per pass; its counts go on adding up), one per section
(`tally_for`).

Threads of one process (a Celery worker's) share a section's tally: an
increment is not atomic, so two threads finishing jobs at the same
instant may lose a count — a rate's error, not a job's.
"""

__all__ = [
    "CLAIM_BUCKETS",
    "DURATION_BUCKETS",
    "Tally",
    "tallies",
    "tally_for",
]

from bisect import bisect_left

# Upper bounds, in seconds, of the run-duration histogram's buckets.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# And of the claim statement's.
CLAIM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 0.5, 1.0, 2.5)


class Tally:
    """The counts of one section in this process.

    :ivar outcomes: ``{(job type, outcome name): row}``, where a row is
        ``[count, duration sum, bucket 0 count, ..., +Inf bucket count]``
        (per bucket, not cumulative); an attempt that never started adds
        to the count only.
    :ivar claims: the same row for the claim statements' durations.
    :ivar lease_expiries: ``{"reclaimed": n, "lost": n}``: jobs this
        process took over from a runner whose lease expired, and attempts
        of this process whose own lease expired (fenced).
    """

    __slots__ = ("section", "outcomes", "claims", "lease_expiries")

    def __init__(self, section):
        self.section = section
        self.outcomes = {}
        self.claims = [0, 0.0] + [0] * (len(CLAIM_BUCKETS) + 1)
        self.lease_expiries = {"reclaimed": 0, "lost": 0}

    def outcome(self, job_type, outcome, seconds, reclaimed=False):
        """Count one attempt of `job_type` that ended in `outcome` (an
        `Outcome` name) after `seconds` (None: it never started).

        :param reclaimed: the attempt took the job over from a runner
            whose lease expired.
        """
        if reclaimed:
            self.lease_expiries["reclaimed"] += 1
        if outcome == "stale":
            self.lease_expiries["lost"] += 1
        row = self._row(job_type, outcome)
        row[0] += 1
        if seconds is not None:
            row[1] += seconds
            row[2 + bisect_left(DURATION_BUCKETS, seconds)] += 1

    def outcomes_of(self, job_type, outcome, seconds, reclaimed=0):
        """Count attempts of `job_type` that ended in `outcome`, one for
        each of `seconds` (how long each ran), `reclaimed` of them taken
        over from a lost runner: a group's, counted once it committed."""
        if reclaimed:
            self.lease_expiries["reclaimed"] += reclaimed
        row = self._row(job_type, outcome)
        row[0] += len(seconds)
        row[1] += sum(seconds)
        for each in seconds:
            row[2 + bisect_left(DURATION_BUCKETS, each)] += 1

    def _row(self, job_type, outcome):
        row = self.outcomes.get((job_type, outcome))
        if row is None:
            row = self.outcomes[(job_type, outcome)] = [0, 0.0] + [0] * (
                len(DURATION_BUCKETS) + 1)
        return row

    def claim(self, seconds):
        """Count one claim statement that took `seconds`."""
        row = self.claims
        row[0] += 1
        row[1] += seconds
        row[2 + bisect_left(CLAIM_BUCKETS, seconds)] += 1


_tallies = {}


def tally_for(section):
    """The `Tally` of `section` (a name, or None) in this process."""
    tally = _tallies.get(section)
    if tally is None:
        tally = _tallies[section] = Tally(section)
    return tally


def tallies():
    """Every tally of this process (a list)."""
    return list(_tallies.values())


def forget():
    """Start every count again from zero (tests)."""
    _tallies.clear()
