"""Typed settings, read from a loaded configuration (`jobs.config`): one
job section (`JobSection`), ``[celery]`` (`CelerySettings`), ``[workers]``
(`WorkerSettings`), ``[web]`` (`WebSettings`) and the ``[schedule.NAME]``
sections (`config_schedules`)."""

from __future__ import annotations

__all__ = ["CelerySettings", "JobSection", "WebSettings", "WorkerSettings",
           "config_schedules"]

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Optional, Union

from jobs.bounds import CONFIG_SECONDS, Bound, problem
from jobs.errors import ConfigError, ScheduleError
from jobs.schedule import Cron, Schedule

if TYPE_CHECKING:
    from jobs.config import JobsConfig


class JobSection:
    """One job section, with typed values.

    A section runs the jobs of one source: the utility providing its
    ``source_interface``, or, for function jobs, the ``@task`` functions
    its ``tasks`` patterns match (`jobs.tasks`). It sets one of the two.

    :ivar name: the section's name (what run_jobs.py is given).
    :ivar dbuser: the database role, or None for the login role.
    :ivar source_interface: the dotted name of the source interface, or
        None for a section of tasks.
    :ivar tasks: the dotted-name patterns of the section's tasks
        (``myapp.mail.*``); empty for a section with a source interface.
    :ivar runner_class: the runner's name.
    """

    name: str
    dbuser: Optional[str]
    source_interface: Optional[str]
    tasks: tuple[str, ...]
    runner_class: str
    batch_size: int
    group_commit: int
    poll_interval: float
    grace_period: float
    processes: int
    log_tail_chars: int
    log_level: int
    lease_seconds: Optional[float]
    max_runtime: Optional[float]
    statement_timeout: Optional[float]
    memory_limit: Optional[int]
    celery_dispatch: bool
    task_queue: Optional[str]
    celery_sweep_grace: float
    max_running: int
    max_running_per_key: int
    rate_limit: int
    rate_period: float

    def __init__(self, config: JobsConfig, name: str):
        self.config = config
        self.name = name
        section = config.lazr[name]
        self.dbuser = section["dbuser"] or None
        self.source_interface = section["source_interface"] or None
        tasks = section["tasks"] or ""
        if not isinstance(tasks, str):
            raise ConfigError("%s: [%s] tasks: %r is not a list of dotted"
                              " names." % (config.path, name, tasks))
        self.tasks = tuple(tasks.split())
        self.runner_class = section["runner_class"]
        self.batch_size = self._number(section, "batch_size", int, 0)
        self.group_commit = self._number(section, "group_commit", int, 0)
        self.poll_interval = self._seconds(section, "poll_interval")
        self.grace_period = self._seconds(section, "grace_period")
        self.processes = self._number(section, "processes", int, 1)
        self.log_tail_chars = self._number(section, "log_tail_chars", int, 100)
        level = logging.getLevelName(str(section["log_level"]).upper())
        if not isinstance(level, int):
            raise ConfigError("%s: [%s] log_level: %r is not a log level." % (
                config.path, name, section["log_level"]))
        self.log_level = level
        self.lease_seconds = self._optional(section, "lease_seconds")
        self.max_runtime = self._optional(section, "max_runtime")
        self.statement_timeout = self._optional(section, "statement_timeout")
        memory_limit = section["memory_limit"]
        self.memory_limit = (None if memory_limit is None else
                             self._number(section, "memory_limit", int, 1))
        dispatch = section["celery_dispatch"]
        if not isinstance(dispatch, bool):
            raise ConfigError("%s: [%s] celery_dispatch: %r is not true or"
                              " false." % (config.path, name, dispatch))
        self.celery_dispatch = dispatch
        self.task_queue = section["task_queue"] or None
        self.celery_sweep_grace = self._seconds(section, "celery_sweep_grace")
        self.max_running = self._number(section, "max_running", int, 0)
        self.max_running_per_key = self._number(
            section, "max_running_per_key", int, 0)
        self.rate_limit = self._number(section, "rate_limit", int, 0)
        self.rate_period = self._seconds(section, "rate_period")
        if self.runner_class not in ("JobRunner", "ProcessJobRunner"):
            raise ConfigError(
                "%s: [%s] runner_class: %r is not JobRunner or "
                "ProcessJobRunner." % (config.path, name, self.runner_class))
        if self.source_interface is None and not self.tasks:
            raise ConfigError(
                "%s: [%s] sets neither source_interface nor tasks: a job"
                " section sets one of them." % (config.path, name))
        if self.source_interface is not None and self.tasks:
            raise ConfigError(
                "%s: [%s] sets both source_interface and tasks: a job"
                " section sets one of them." % (config.path, name))
        for key in ("dbuser", "source_interface", "runner_class",
                    "task_queue"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise ConfigError(
                    "%s: [%s] %s: %r is not a name."
                    % (config.path, name, key, value))

    def _optional(self, section: Any, key: str) -> Optional[float]:
        """A number of seconds, or None when the key says ``none``."""
        if section[key] is None:
            return None
        return self._seconds(section, key)

    def _seconds(self, section: Any, key: str) -> float:
        """A number of seconds, in its range (`jobs.bounds`)."""
        return _number(self.config, self.name, key, float,
                       CONFIG_SECONDS[key])

    def _number(self, section: Any, key: str, kind: type,
                minimum: float) -> Any:
        return _number(self.config, self.name, key, kind, minimum)


def _number(config: JobsConfig, name: str, key: str, kind: type,
            minimum: Union[float, Bound]) -> Any:
    """Section `name`'s `key` as a `kind` (int or float) of at least
    `minimum`, or in the range of a `Bound`.

    :raises ConfigError: naming the file, section and key.
    """
    value = config.lazr[name][key]
    if isinstance(value, str) and kind is float:
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("%s: [%s] %s: %r is not a number." % (
            config.path, name, key, value))
    if isinstance(minimum, Bound):
        wrong = problem(minimum, value)
        if wrong is not None:
            raise ConfigError("%s: [%s] %s: %s" % (
                config.path, name, key, wrong))
    elif value < minimum:
        raise ConfigError("%s: [%s] %s: %r is below %s." % (
            config.path, name, key, value, minimum))
    return kind(value)


class WorkerSettings:
    """The ``[workers]`` section: how runners beat in the worker table
    (`jobs.presence`).

    :ivar beat_seconds: seconds between a runner's beats.
    :ivar lost_after_beats: a runner whose last beat is older than this
        many of its beats is lost.
    :ivar keep_lost_seconds: how long a lost runner's row is kept.
    """

    def __init__(self, config: JobsConfig):
        self.beat_seconds = _number(config, "workers", "beat_seconds",
                                    float, CONFIG_SECONDS["beat_seconds"])
        self.lost_after_beats = _number(config, "workers",
                                        "lost_after_beats", int, 1)
        self.keep_lost_seconds = _number(
            config, "workers", "keep_lost_seconds", float,
            self.lost_after_seconds)

    @property
    def lost_after_seconds(self) -> float:
        """Seconds without a beat after which a runner is lost."""
        return self.beat_seconds * self.lost_after_beats


SCHEDULE_CATEGORY = "schedule"
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def config_schedules(config: JobsConfig) -> list[Schedule]:
    """The `Schedule` of each ``[schedule.NAME]`` section, in name order.

    :raises ConfigError: naming the file, the section and what is wrong
        (an unknown key, no task or cron, a bad cron expression, time
        zone, catch_up or grace, or arguments that are not JSON).
    """
    template = SCHEDULE_CATEGORY + ".master"
    # (lazr.config lists the template itself when no file adds one.)
    found = [section for section in config.lazr.getByCategory(
        SCHEDULE_CATEGORY, []) if section.name != template]
    known = set(config.lazr.schema[template])
    schedules = []
    for section in sorted(found, key=lambda section: section.name):
        name = section.category_and_section_names[1]
        where = "%s: [%s]" % (_file_of(config, section.name), section.name)
        if not SCHEDULE_NAME.match(name):
            raise ConfigError("%s: a schedule's name is made of letters,"
                              " digits, _ and -." % where)
        for _, parser in config.chain:
            if parser.has_section(section.name):
                unknown = sorted(set(parser.options(section.name)) - known)
                if unknown:
                    raise ConfigError(
                        "%s: unknown key %s (a schedule's keys: %s)." % (
                            where, unknown[0], ", ".join(sorted(known))))
        values = {key: section[key] for key in section}
        for key in ("task", "cron"):
            if not isinstance(values[key], str) or not values[key].strip():
                raise ConfigError("%s: %s is not set." % (where, key))
        try:
            # (lazr.config reads "none" as None.)
            catch_up = values["catch_up"]
            cron = Cron(values["cron"], str(values["timezone"]),
                        "none" if catch_up is None else str(catch_up),
                        _number(config, section.name, "grace", float, 0))
        except ScheduleError as e:
            raise ConfigError("%s: %s" % (where, e)) from None
        arguments = _json(where, "args", values["args"], list)
        keywords = _json(where, "kwargs", values["kwargs"], dict)
        schedules.append(Schedule(name, values["task"].strip(), cron,
                                  tuple(arguments), keywords,
                                  origin=config.path))
    return schedules


def _json(where: str, key: str, text: Any, kind: type) -> Any:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError as e:
        raise ConfigError("%s: %s: not JSON (%s)." % (where, key, e)
                          ) from None
    if not isinstance(value, kind):
        raise ConfigError("%s: %s: %r is not a JSON %s." % (
            where, key, text, "array" if kind is list else "object"))
    return value


def _file_of(config: JobsConfig, section: str) -> str:
    """The file of the chain that defines `section` (the nearest)."""
    for file_path, parser in config.chain:
        if parser.has_section(section):
            return file_path
    return config.path


class CelerySettings:
    """The ``[celery]`` section, with typed values.

    :ivar broker_url: the broker's URL (``amqp://...`` or ``redis://...``).
    :ivar default_queue: the queue of sections that name none.
    :ivar fallback_queue: where a job past its soft time limit goes
        (None: nowhere, it fails).
    :ivar time_limits: {queue: (soft seconds, hard seconds)}; a queue not
        in it has no limits.
    :ivar publish_retries: attempts to reach the broker per send.
    """

    broker_url: str
    default_queue: str
    fallback_queue: Optional[str]
    time_limits: dict[str, tuple[float, float]]
    publish_retries: int

    def __init__(self, config: JobsConfig):
        section = config.lazr["celery"]
        path = config.path

        def text(key: str) -> Optional[str]:
            value = section[key]
            if value is not None and not isinstance(value, str):
                raise ConfigError("%s: [celery] %s: %r is not text."
                                  % (path, key, value))
            return value or None

        broker_url = text("broker_url")
        if broker_url is None:
            raise ConfigError("%s: [celery] broker_url: not set." % path)
        self.broker_url = broker_url
        default_queue = text("default_queue")
        if default_queue is None:
            raise ConfigError("%s: [celery] default_queue: not set." % path)
        self.default_queue = default_queue
        self.fallback_queue = text("fallback_queue")
        self.time_limits = {}
        for item in (text("time_limits") or "").split():
            match = re.fullmatch(
                r"([^=\s]+)=(\d+(?:\.\d*)?):(\d+(?:\.\d*)?)", item)
            if match is None or float(match[2]) >= float(match[3]):
                raise ConfigError(
                    "%s: [celery] time_limits: %r is not QUEUE=SOFT:HARD"
                    " (seconds, SOFT below HARD)." % (path, item))
            self.time_limits[match[1]] = (float(match[2]), float(match[3]))
        retries = section["publish_retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) \
                or retries < 0:
            raise ConfigError("%s: [celery] publish_retries: %r is not a"
                              " count." % (path, retries))
        self.publish_retries = retries

    def limits(self, queue: str) -> tuple[Optional[float], Optional[float]]:
        """Return ``(soft, hard)`` seconds for `queue`; None for no limit."""
        return self.time_limits.get(queue, (None, None))


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class WebSettings:
    """The ``[web]`` section (the dashboard, `jobs.web`), with typed values.

    :ivar enabled: `jobs web` may start.
    :ivar host: the address it listens on; :ivar port: its port.
    :ivar user: the HTTP basic user (None: no basic authentication).
    :ivar password_hash: that user's scrypt hash (`jobs.web.auth`).
    :ivar trusted_header: the header a reverse proxy sets to the user's
        name (None: no proxy authentication).
    :ivar trusted_proxies: the addresses that header is believed from.
    :ivar refresh: seconds between a page's automatic refreshes.
    """

    def __init__(self, config: JobsConfig):
        section = config.lazr["web"]
        path = config.path

        def text(key: str) -> Optional[str]:
            value = section[key]
            if value is not None and not isinstance(value, str):
                value = str(value)
            return value or None

        enabled = section["enabled"]
        if not isinstance(enabled, bool):
            raise ConfigError("%s: [web] enabled: %r is not true or false."
                              % (path, enabled))
        self.enabled = enabled
        listen = text("listen") or ""
        match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d+)", listen)
        if match is None or not match[1] or not 0 < int(match[2]) < 65536:
            raise ConfigError("%s: [web] listen: %r is not HOST:PORT."
                              % (path, listen))
        self.host, self.port = match[1], int(match[2])
        self.user = text("user")
        self.password_hash = text("password_hash")
        if bool(self.user) != bool(self.password_hash):
            raise ConfigError("%s: [web] user and password_hash go together"
                              " (jobs web --hash-password makes the hash)."
                              % path)
        self.trusted_header = text("trusted_header")
        self.trusted_proxies = tuple((text("trusted_proxies") or "").split())
        refresh = section["refresh"]
        if isinstance(refresh, bool) or not isinstance(refresh, int) \
                or refresh < 0:
            raise ConfigError("%s: [web] refresh: %r is not a number of"
                              " seconds." % (path, refresh))
        self.refresh = refresh

    @property
    def authenticates(self) -> bool:
        """True when some authentication is configured."""
        return bool(self.user or self.trusted_header)

    @property
    def loopback(self) -> bool:
        """True when it listens on a loopback address only."""
        return self.host in LOOPBACK or self.host.startswith("127.")
