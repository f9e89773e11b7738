"""Job sections: a configuration section's settings and source, found once.

Everything that runs, sweeps, grants or inspects a section's jobs (cron
runs, workers, process children, Celery workers, ``jobs db roles``, the
``jobs`` command) finds the section here, with one error policy: a section
that cannot be used raises `SectionError`, one line naming the section and
the cause; each caller decides what that means for it (exit 2, skip with a
WARNING, refuse the command).
"""

__all__ = [
    "DEFAULT_SETTINGS",
    "RunSettings",
    "Section",
    "error_reporter_for",
    "find_section",
    "find_section_source",
    "lease_seconds",
    "overridden",
]

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

from zope.component import queryUtility
from zope.dottedname.resolve import resolve
from zope.interface.interface import InterfaceClass

from jobs.bounds import LEASE_SECONDS, problem, seconds_of
from jobs.config import get_config
from jobs.errorlog import ErrorReporter
from jobs.errors import ConfigError, SectionError
from jobs.oopsindex import IndexWriter
from jobs.tasks import section_source


@dataclass
class RunSettings:
    """How a section's jobs are run: the keys of ``[job_defaults]``.

    The configuration's `jobs.config.JobSection` has the same attributes;
    this is what a runner uses without a configuration section (a custom
    cron script's own source, a test, a benchmark).
    """

    name: Optional[str] = None
    dbuser: Optional[str] = None
    source_interface: Optional[str] = None
    tasks: tuple = ()
    runner_class: str = "JobRunner"
    batch_size: int = 10
    group_commit: int = 0
    poll_interval: float = 5.0
    grace_period: float = 30.0
    processes: int = 2
    memory_limit: Optional[int] = None
    lease_seconds: Optional[float] = None
    max_runtime: Optional[float] = None
    statement_timeout: Optional[float] = None
    log_level: int = logging.INFO
    log_tail_chars: int = 8000
    celery_dispatch: bool = False
    task_queue: Optional[str] = None
    celery_sweep_grace: float = 300.0


DEFAULT_SETTINGS = RunSettings()


@dataclass
class Section:
    """A job section that can run: its name, settings and source.

    :ivar settings: a `jobs.config.JobSection` (or `RunSettings`).
    :ivar source: the `IJobSource` utility its ``source_interface`` names.
    """

    name: str
    settings: Any
    source: Any


def find_section(config, name, interface=None):
    """Return the `Section` called `name` of `config`.

    :param interface: the source interface (or its dotted name) of a
        custom cron script; then `name` need not be a configured section
        (its settings are the defaults).
    :raises SectionError: the section is unknown, its source interface
        cannot be imported or is not an interface, or no utility provides
        it.
    """
    if interface is not None and name not in config.job_section_names:
        settings = RunSettings(name=name)
    else:
        try:
            settings = config.job_section(name)
        except ConfigError as e:
            raise SectionError(str(e)) from None
    if interface is None and settings.tasks:
        # A section of @task functions: their source, made for it.
        try:
            return Section(name, settings, section_source(config, settings))
        except ConfigError as e:
            raise SectionError(str(e)) from None
    return Section(name, settings, _source(
        name, interface or settings.source_interface))


def find_section_source(config, name, interface=None):
    """The source of section `name` (see `find_section`)."""
    return find_section(config, name, interface).source


def _source(name, dotted):
    if isinstance(dotted, InterfaceClass):
        interface = dotted
    else:
        try:
            interface = resolve(dotted)
        except (ImportError, AttributeError, ValueError) as e:
            raise SectionError(
                "Section %s: cannot import source_interface %s: %s"
                % (name, dotted, e)) from None
    if not isinstance(interface, InterfaceClass):
        raise SectionError(
            "Section %s: source_interface %s is not an interface."
            % (name, dotted))
    source = queryUtility(interface)
    if source is None:
        raise SectionError(
            "Section %s: no utility is registered for %s (see"
            " [components] register)." % (name, interface.__identifier__))
    return source


def lease_seconds(settings, source):
    """The lease, in seconds, of a claim of `source`'s jobs: the section's
    ``lease_seconds`` when set, else the job class's ``lease_duration``.
    Every runner mode asks here."""
    if getattr(settings, "lease_seconds", None):
        return float(settings.lease_seconds)
    duration = getattr(source, "lease_duration", None) or timedelta(
        seconds=60)
    wrong = problem(LEASE_SECONDS, duration)
    if wrong is not None:
        raise SectionError("Section %s: %s lease_duration: %s" % (
            getattr(settings, "name", "?"), getattr(
                source, "__name__", type(source).__name__), wrong))
    return seconds_of(duration)


def error_reporter_for(section=None, config=None):
    """The `jobs.errorlog.ErrorReporter` of `section` (a name, or None):
    its reports go to ``[error_reports] error_dir`` as
    ``<oops_prefix>-<section>``, secrets redacted as configured, each
    indexed in the database (`jobs.oopsindex`)."""
    config = config or get_config()
    reporter = config.oops_prefix
    if section:
        reporter = "%s-%s" % (reporter, section)
    reporter = ErrorReporter(config.error_dir, reporter, config.redact)
    reporter.listeners.append(IndexWriter(section, config.error_host))
    return reporter


class _Overridden:
    """A section's settings with some values replaced."""

    def __init__(self, settings, values):
        self._settings = settings
        self.__dict__.update(values)

    def __getattr__(self, name):
        return getattr(self._settings, name)


def overridden(settings, **values):
    """`settings` (a section's) with `values` in place of its own (the
    command line's ``--batch-size``, say)."""
    return _Overridden(settings, values)
