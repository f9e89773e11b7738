"""Execution back-ends beyond the synchronous `jobs.runner.JobRunner`:
batch claiming, the long-running worker, the process pool."""
