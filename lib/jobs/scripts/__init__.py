"""Script machinery: options, logging, lock files, OOPS reporting of log
records. Knows nothing about jobs."""

from jobs.scripts.base import Script, UsageError  # noqa: F401
