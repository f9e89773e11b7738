"""`JobsCollector`: Prometheus metrics of jobs, made when scraped.

A custom ``prometheus_client`` collector: nothing is kept in metric
objects between scrapes. Each scrape reads

- this process's runner tallies (`jobs.metrics.tally`): runs by section,
  job type and outcome, failures, retries, run-duration and claim
  histograms, lease expiries;
- with `database`, the database's cheap counts (`jobs.counts`, cached a
  few seconds): jobs by section and status, the ready queue's depth, the
  oldest ready job's age, live and lost workers.

``jobs web`` serves both at ``/metrics``; a worker started with
``--metrics-port`` serves its own tallies (the database's counts are the
same from every worker: scrape them once, from ``jobs web``).
"""

__all__ = ["JobsCollector", "registry"]

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from jobs.metrics.tally import CLAIM_BUCKETS, DURATION_BUCKETS, tallies

# Outcomes (jobs.outcome names) that count as failures and retries.
FAILURES = ("fail", "user-error")
RETRIES = ("retry",)


def _section(tally):
    return tally.section or "(none)"


def _buckets(bounds, row):
    """Cumulative ``[(le, count)]`` of a tally row's per-bucket counts."""
    buckets, total = [], 0
    for bound, count in zip(list(bounds) + ["+Inf"], row[2:]):
        total += count
        buckets.append((str(bound), total))
    return buckets


def process_metrics():
    """The metric families of this process's tallies."""
    runs = CounterMetricFamily(
        "jobs_runs", "Attempts this process ran, by outcome.",
        labels=["section", "type", "outcome"])
    failures = CounterMetricFamily(
        "jobs_failures", "Attempts that ended FAILED (with or without an"
        " OOPS).", labels=["section", "type"])
    retries = CounterMetricFamily(
        "jobs_retries", "Attempts that ended in a retry.",
        labels=["section", "type"])
    durations = HistogramMetricFamily(
        "jobs_run_duration_seconds", "How long attempts ran.",
        labels=["section", "type"])
    claims = HistogramMetricFamily(
        "jobs_claim_duration_seconds", "How long the claim statement took.",
        labels=["section"])
    expiries = CounterMetricFamily(
        "jobs_lease_expiries", "Jobs taken over from a runner whose lease"
        " expired (reclaimed), and attempts of this process fenced because"
        " their own lease expired (lost).", labels=["section", "kind"])
    for tally in tallies():
        section = _section(tally)
        by_type = {}
        for (job_type, outcome), row in list(tally.outcomes.items()):
            runs.add_metric([section, job_type, outcome], row[0])
            merged = by_type.setdefault(job_type, [0, 0.0, 0, 0] + [0] * (
                len(DURATION_BUCKETS) + 1))
            if outcome in FAILURES:
                merged[2] += row[0]
            if outcome in RETRIES:
                merged[3] += row[0]
            merged[1] += row[1]
            for index, count in enumerate(row[2:]):
                merged[4 + index] += count
        for job_type, merged in by_type.items():
            failures.add_metric([section, job_type], merged[2])
            retries.add_metric([section, job_type], merged[3])
            histogram = [None, merged[1]] + merged[4:]
            durations.add_metric([section, job_type], _buckets(
                DURATION_BUCKETS, histogram), merged[1])
        if tally.claims[0]:
            claims.add_metric([section], _buckets(
                CLAIM_BUCKETS, tally.claims), tally.claims[1])
        for kind, count in tally.lease_expiries.items():
            expiries.add_metric([section, kind], count)
    return [runs, failures, retries, durations, claims, expiries]


def database_metrics(snap):
    """The metric families of a `jobs.counts.Snapshot`."""
    jobs = GaugeMetricFamily(
        "jobs_jobs", "Jobs in the table, by section and status (counts"
        " past 10,000 a kind and status are the planner's estimates).",
        labels=["section", "status"])
    for (section, status), count in sorted(
            snap.by_section().items(), key=lambda item: (
                item[0][0], item[0][1].value)):
        jobs.add_metric([section, status.name.lower()], count)
    ready = GaugeMetricFamily(
        "jobs_ready", "Jobs a runner may take now (counted up to 10,001).",
        value=snap.ready)
    age = GaugeMetricFamily(
        "jobs_oldest_ready_age_seconds", "How long the oldest ready job"
        " has been ready (0 when none is).",
        value=snap.oldest_ready_age or 0.0)
    workers = GaugeMetricFamily(
        "jobs_workers", "Runners in the worker table: live (beating) or"
        " lost.", labels=["state"])
    for state, count in sorted(snap.workers.items()):
        workers.add_metric([state], count)
    return [jobs, ready, age, workers]


class JobsCollector:
    """Collects jobs' metrics when scraped (see the module).

    :param database: a callable returning ``(store, config)`` for the
        database's counts, or None for this process's tallies only.
    """

    def __init__(self, database=None):
        self.database = database

    def describe(self):
        # Nothing up front: registering must not query the database.
        return []

    def collect(self):
        yield from process_metrics()
        if self.database is not None:
            import transaction

            from jobs.counts import snapshot
            store, config = self.database()
            try:
                snap = snapshot(store, config)
            finally:
                transaction.abort()
            yield from database_metrics(snap)


def registry(database=None):
    """A `CollectorRegistry` holding a `JobsCollector` (and nothing of
    the client's default process metrics)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(JobsCollector(database))
    return found
