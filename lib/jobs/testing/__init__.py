"""Test support shipped with jobs, for its own tests and job authors'."""
