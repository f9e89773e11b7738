"""The `jobs` command (see `jobs.cli.main`): one module per group of
sub-commands."""

__all__ = ["main"]

from jobs.cli.main import main
