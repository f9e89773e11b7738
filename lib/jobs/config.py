"""Configuration: lazr.config instances chosen by ``JOBS_CONFIG``.

``JOBS_CONFIG`` is an instance name (a folder under ``configs/`` holding
``jobs-lazr.conf``; default ``development``) or the path of a ``.conf``
file, typically an application's own, which may ``[meta] extends:`` ours.
``JOBS_DATABASE_URI`` overrides ``[database] uri``.

Applications add job sections without touching the schema: a section the
schema does not name, which sets ``source_interface``, is a job section
and takes the keys (and defaults) of the schema's ``[job_defaults]``.
Every problem is reported as `ConfigError`, naming the file, the section
and the key.
"""

__all__ = [
    "CelerySettings",
    "JobsConfig",
    "JobSection",
    "get_config",
    "load",
    "set_config",
]

import configparser
import io
import logging
import os
import re

from lazr.config import ImplicitTypeSchema
from lazr.config.interfaces import ConfigErrors

from jobs.errors import ConfigError

CONFIGS_DIR = os.environ.get("JOBS_CONFIGS_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), "configs")
SCHEMA_PATH = os.path.join(CONFIGS_DIR, "schema-lazr.conf")
TEMPLATE_SECTION = "job_defaults"


def resolve_instance(name_or_path):
    """Return the config file path for an instance name or a file path."""
    if name_or_path.endswith(".conf") or os.sep in name_or_path:
        return os.path.abspath(name_or_path)
    return os.path.join(CONFIGS_DIR, name_or_path, "jobs-lazr.conf")


def _read_chain(path):
    """Return [(path, RawConfigParser)] following ``[meta] extends``."""
    chain, seen = [], set()
    while path is not None:
        if path in seen:
            raise ConfigError("%s: [meta] extends loops back to itself." % path)
        seen.add(path)
        parser = configparser.RawConfigParser(strict=False)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f, path)
        except FileNotFoundError:
            raise ConfigError("Config file not found: %s" % path) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("Cannot read config file %s: %s" % (path, e)) from None
        except configparser.Error as e:
            raise ConfigError("Malformed config file %s: %s" % (
                path, " ".join(str(e).split()))) from None
        chain.append((path, parser))
        extends = parser.get("meta", "extends", fallback=None)
        path = (os.path.normpath(os.path.join(os.path.dirname(path), extends))
                if extends else None)
    return chain


def _schema_sections(schema_text):
    """Return {section name: body text} of the schema."""
    sections, name, body = {}, None, []
    for line in schema_text.splitlines(keepends=True):
        match = re.match(r"^\[([^\]]+)\]\s*$", line)
        if match:
            if name is not None:
                sections[name] = "".join(body)
            name, body = match.group(1), []
        elif name is not None:
            body.append(line)
    if name is not None:
        sections[name] = "".join(body)
    return sections


class JobSection:
    """One job section, with typed values.

    :ivar name: the section's name (what run_jobs.py is given).
    :ivar dbuser: the database role, or None for the login role.
    :ivar source_interface: the dotted name of the source interface.
    :ivar runner_class: the runner's name.
    """

    def __init__(self, config, name):
        self.config = config
        self.name = name
        section = config.lazr[name]
        self.dbuser = section["dbuser"] or None
        self.source_interface = section["source_interface"] or None
        self.runner_class = section["runner_class"]
        self.batch_size = self._number(section, "batch_size", int, 0)
        self.group_commit = self._number(section, "group_commit", int, 0)
        self.poll_interval = self._number(section, "poll_interval", float, 0.01)
        self.grace_period = self._number(section, "grace_period", float, 0)
        self.processes = self._number(section, "processes", int, 1)
        self.log_tail_chars = self._number(section, "log_tail_chars", int, 100)
        level = logging.getLevelName(str(section["log_level"]).upper())
        if not isinstance(level, int):
            raise ConfigError("%s: [%s] log_level: %r is not a log level." % (
                config.path, name, section["log_level"]))
        self.log_level = level
        self.lease_seconds = self._optional(section, "lease_seconds", 1)
        self.max_runtime = self._optional(section, "max_runtime", 1)
        memory_limit = section["memory_limit"]
        self.memory_limit = (None if memory_limit is None else
                             self._number(section, "memory_limit", int, 1))
        dispatch = section["celery_dispatch"]
        if not isinstance(dispatch, bool):
            raise ConfigError("%s: [%s] celery_dispatch: %r is not true or"
                              " false." % (config.path, name, dispatch))
        self.celery_dispatch = dispatch
        self.task_queue = section["task_queue"] or None
        self.celery_sweep_grace = self._number(
            section, "celery_sweep_grace", float, 0)
        if self.runner_class not in ("JobRunner", "ProcessJobRunner"):
            raise ConfigError(
                "%s: [%s] runner_class: %r is not JobRunner or "
                "ProcessJobRunner." % (config.path, name, self.runner_class))
        if self.source_interface is None:
            raise ConfigError(
                "%s: [%s] source_interface: not set." % (config.path, name))
        for key in ("dbuser", "source_interface", "runner_class",
                    "task_queue"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise ConfigError(
                    "%s: [%s] %s: %r is not a name."
                    % (config.path, name, key, value))


    def _optional(self, section, key, minimum):
        """A number of seconds, or None when the key says ``none``."""
        if section[key] is None:
            return None
        return self._number(section, key, float, minimum)

    def _number(self, section, key, kind, minimum):
        value = section[key]
        if isinstance(value, str) and kind is float:
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("%s: [%s] %s: %r is not a number." % (
                self.config.path, self.name, key, value))
        if value < minimum:
            raise ConfigError("%s: [%s] %s: %r is below %s." % (
                self.config.path, self.name, key, value, minimum))
        return kind(value)


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

    def __init__(self, config):
        section = config.lazr["celery"]
        path = config.path

        def text(key):
            value = section[key]
            if value is not None and not isinstance(value, str):
                raise ConfigError("%s: [celery] %s: %r is not text."
                                  % (path, key, value))
            return value or None

        self.broker_url = text("broker_url")
        if self.broker_url is None:
            raise ConfigError("%s: [celery] broker_url: not set." % path)
        self.default_queue = text("default_queue")
        if self.default_queue is None:
            raise ConfigError("%s: [celery] default_queue: not set." % path)
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

    def limits(self, queue):
        """Return ``(soft, hard)`` seconds for `queue`; None for no limit."""
        return self.time_limits.get(queue, (None, None))


class JobsConfig:
    """A loaded, validated configuration instance.

    :ivar path: the instance's config file.
    :ivar root: the folder relative paths are resolved against.
    :ivar lazr: the underlying lazr.config object.
    :ivar job_section_names: the job sections, in file order.
    """

    def __init__(self, path, lazr, job_section_names, root):
        self.path = path
        self.lazr = lazr
        self.job_section_names = job_section_names
        self.root = root

    def resolve_path(self, path):
        """Return `path` made absolute against `root`."""
        return os.path.join(self.root, os.path.expanduser(path))

    @property
    def database_uri(self):
        """The database URI, with relative SQLite paths made absolute."""
        uri = os.environ.get("JOBS_DATABASE_URI") or self.lazr.database.uri
        if not isinstance(uri, str):
            raise ConfigError("%s: [database] uri: %r is not a URI."
                              % (self.path, uri))
        scheme, _, rest = uri.partition(":")
        if scheme == "sqlite" and rest and not rest.startswith("/"):
            path, sep, options = rest.partition("?")
            uri = "sqlite:%s%s%s" % (self.resolve_path(path), sep, options)
        return uri

    @property
    def error_dir(self):
        """The folder OOPS reports are written to."""
        return self.resolve_path(self._text("error_reports", "error_dir"))

    @property
    def oops_prefix(self):
        """The prefix of OOPS reporters."""
        return self._text("error_reports", "oops_prefix")

    @property
    def redact(self):
        """The names whose values OOPS reports hide (tuple of str)."""
        return tuple(self._text("error_reports", "redact").lower().split())

    @property
    def lock_dir(self):
        """The folder of lock files."""
        return self.resolve_path(self._text("locks", "lock_dir"))

    def _text(self, section, key):
        value = self.lazr[section][key]
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError("%s: [%s] %s: %r is not text."
                              % (self.path, section, key, value))
        return value

    @property
    def celery(self):
        """The `CelerySettings` of ``[celery]``.

        :raises ConfigError: when a value is malformed.
        """
        return CelerySettings(self)

    def job_section(self, name):
        """Return the `JobSection` called `name`.

        :raises ConfigError: when there is no such job section.
        """
        if name not in self.job_section_names:
            known = ", ".join(self.job_section_names) or "none"
            raise ConfigError(
                "Unknown job section %r in %s (job sections: %s)."
                % (name, self.path, known))
        return JobSection(self, name)


def load(name_or_path=None):
    """Load and validate a configuration instance.

    :param name_or_path: an instance name or file; default ``JOBS_CONFIG``
        or ``development``.
    :raises ConfigError: naming the file, section and key at fault.
    """
    name_or_path = name_or_path or os.environ.get("JOBS_CONFIG") or "development"
    path = resolve_instance(name_or_path)
    chain = _read_chain(path)
    with open(SCHEMA_PATH, encoding="ascii") as f:
        schema_text = f.read()
    schema_sections = _schema_sections(schema_text)
    job_sections = []
    for _, parser in reversed(chain):
        for section in parser.sections():
            if section == "meta" or section in schema_sections:
                continue
            if section not in job_sections:
                job_sections.append(section)
    for section in job_sections:
        if not any(parser.has_option(section, "source_interface")
                   for _, parser in chain if parser.has_section(section)):
            raise ConfigError(
                "%s: [%s] is not a section of the schema, nor a job section"
                " (it sets no source_interface)."
                % (_file_defining(chain, section), section))
    template = schema_sections[TEMPLATE_SECTION]
    full_schema = schema_text + "".join(
        "\n[%s]\n%s" % (section, template) for section in job_sections)
    try:
        schema = ImplicitTypeSchema(
            SCHEMA_PATH, file_object=io.StringIO(full_schema))
        lazr = schema.load(path)
        lazr.validate()
    except ConfigErrors as e:
        raise ConfigError("%s is not valid: %s" % (
            path, "; ".join(str(error) for error in e.errors))) from None
    except Exception as e:
        raise ConfigError("%s is not valid: %s" % (path, e)) from None
    root = os.path.dirname(CONFIGS_DIR)
    return JobsConfig(path, lazr, job_sections, root)


def _file_defining(chain, section):
    for file_path, parser in chain:
        if parser.has_section(section):
            return file_path
    return chain[0][0]


_current = None


def get_config():
    """Return the current configuration, loading it on first use."""
    global _current
    if _current is None:
        _current = load()
    return _current


def set_config(config):
    """Make `config` (a `JobsConfig`, or None to reload) the current one."""
    global _current
    _current = config
