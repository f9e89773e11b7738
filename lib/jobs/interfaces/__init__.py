"""Interfaces: the documented contracts of jobs. Imports nothing else of jobs
except its exceptions."""
