"""Metrics: what runners count in this process (`jobs.metrics.tally`, no
dependency, a few integer bumps per job) and the Prometheus side
(`jobs.metrics.collector`, `jobs.metrics.serve`: the ``web`` extra's
``prometheus_client``), which reads the tallies and the database's
cheap counts (`jobs.counts`) when scraped."""
