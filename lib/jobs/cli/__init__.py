"""The `jobs` command (see `jobs.cli.main`): one module per group of
sub-commands."""

__all__ = ["console", "main"]

from jobs.cli.main import console, main
