"""Packaging for jobs: the metadata is in pyproject.toml (setuptools).

Kept so that ``python setup.py ...`` and tools that look for it still
work; it adds nothing.
"""

from setuptools import setup

setup()
