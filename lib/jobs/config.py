"""Configuration: lazr.config instances chosen by ``JOBS_CONFIG``.

``JOBS_CONFIG`` (or ``--config``) is the path of any ``.conf`` file
(typically an application's own) or the name of an *instance*, a folder
holding ``jobs-lazr.conf``, looked up under ``JOBS_CONFIGS_DIR``, the
checkout's ``configs/`` (``development``, ``testrunner``, ``demo``: when
jobs runs from its source tree), then the package's ``configs/``
(``base``). Default: ``development``, which only a checkout has.

``[meta] extends:`` is a path (relative to the file's folder, or
absolute) or an instance name; an application's file usually says
``extends: base``, the packaged base with no job section. A relative path
in a value is relative to the folder of the file that sets it; the
schema's defaults, to the folder of the file ``JOBS_CONFIG`` names.
``JOBS_DATABASE_URI`` overrides ``[database] uri``.

The schema and the base instance ship in the package. A section the
schema does not name, which sets ``source_interface`` (or ``tasks``, for
`jobs.tasks` functions), is a job section with the keys and defaults of
the schema's ``[job_defaults]``. Every problem is a `ConfigError` naming
the file, the section and the key.
"""

from __future__ import annotations

__all__ = [
    "CelerySettings",
    "JobsConfig",
    "JobSection",
    "get_config",
    "load",
    "resolve_instance",
    "set_config",
]

import configparser
import io
import os
import re
from typing import Any, Optional

from lazr.config import ImplicitTypeSchema
from lazr.config import Config as LazrConfig
from lazr.config.interfaces import ConfigErrors

from jobs.bounds import CONFIG_SECONDS, problem
from jobs.errors import ConfigError
from jobs.instances import (
    PACKAGED_CONFIGS,
    read_chain,
    resolve_instance,
    without_meta,
)
from jobs.schedule import Schedule
from jobs.settings import (
    CelerySettings,
    JobSection,
    WebSettings,
    WorkerSettings,
    config_schedules,
)

SCHEMA_PATH = os.path.join(PACKAGED_CONFIGS, "schema-lazr.conf")
DEFAULT_INSTANCE = "development"
TEMPLATE_SECTION = "job_defaults"
# A section the schema does not name is a job section when it sets one.
JOB_SECTION_KEYS = ("source_interface", "tasks")
# [section] key pairs whose values are paths (or sqlite: URIs).
PATH_KEYS = {("database", "uri"), ("error_reports", "error_dir"),
             ("locks", "lock_dir")}


def _schema_sections(schema_text: str) -> dict[str, str]:
    """Return {section name: body text} of the schema."""
    sections: dict[str, str] = {}
    name: Optional[str] = None
    body: list[str] = []
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


class JobsConfig:
    """A loaded, validated configuration instance.

    :ivar path: the instance's config file.
    :ivar root: the folder of `path`: the schema's relative defaults are
        relative to it.
    :ivar lazr: the underlying lazr.config object.
    :ivar job_section_names: the job sections, in file order.
    :ivar chain: ``[(file, parser)]``: `path`, then the files it extends.
    """

    def __init__(self, path: str, lazr: Any, job_section_names: list[str],
                 chain: list[tuple[str, configparser.RawConfigParser]]):
        self.path = path
        self.lazr = lazr
        self.job_section_names = job_section_names
        self.chain = chain
        self.root = os.path.dirname(path)

    def folder_of(self, section: str, key: str) -> str:
        """The folder of the file that sets `section`'s `key` (the
        nearest in the chain); `root` when only the schema does."""
        for file_path, parser in self.chain:
            if parser.has_option(section, key):
                return os.path.dirname(file_path)
        return self.root

    def resolve_path(self, path: str, section: Optional[str] = None,
                     key: Optional[str] = None) -> str:
        """Return `path` made absolute: against the folder of the file
        that sets `section`'s `key`, or against `root`."""
        folder = self.root if section is None or key is None else (
            self.folder_of(section, key))
        return os.path.normpath(os.path.join(
            folder, os.path.expanduser(path)))

    @property
    def session_settings(self) -> dict[str, Optional[float]]:
        """PostgreSQL settings of every runner connection, in seconds
        (None: no limit): ``lock_timeout`` and
        ``idle_in_transaction_session_timeout`` from ``[database]``."""
        section = self.lazr["database"]
        found = {}
        for key, setting in (
                ("lock_timeout", "lock_timeout"),
                ("idle_in_transaction_timeout",
                 "idle_in_transaction_session_timeout")):
            value = section[key]
            if value is not None and (isinstance(value, bool) or not
                                      isinstance(value, (int, float))
                                      or value <= 0):
                raise ConfigError(
                    "%s: [database] %s: %r is not a number of seconds above"
                    " 0 (or none)." % (self.path, key, value))
            found[setting] = value
        return found

    def confine_to(self, uri: str) -> None:
        """From now on, `uri` is this configuration's database URI, and
        nothing in it holds the configured one (a process child that runs
        a role section's job code: `jobs.database.confine`)."""
        self.lazr.push("confined", "[database]\nuri: %s\n" % uri)
        for _, parser in self.chain:
            if parser.has_option("database", "uri"):
                parser.set("database", "uri", uri)
        self._confined_uri = uri

    @property
    def command_session_settings(self) -> dict[str, Any]:
        """`session_settings`, and for the `jobs` command's own queries
        ``[database] command_statement_timeout``, a check every second
        that the client is still there, and no JIT compilation (which
        costs more than it saves on an operator's one-off counts)."""
        value = self.lazr["database"]["command_statement_timeout"]
        if isinstance(value, str):  # lazr.config types only whole numbers
            try:
                value = float(value)
            except ValueError:
                pass
        wrong = None if value is None else problem(
            CONFIG_SECONDS["command_statement_timeout"], value)
        if wrong is not None:
            raise ConfigError("%s: [database] command_statement_timeout: %s"
                              % (self.path, wrong))
        return dict(self.session_settings, statement_timeout=value,
                    client_connection_check_interval=1, jit="off")

    @property
    def prepared_statements(self) -> bool:
        """Whether runners send their hot statements prepared
        (``[database] prepared_statements``; `jobs.database.prepared`)."""
        value = self.lazr["database"]["prepared_statements"]
        if not isinstance(value, bool):
            raise ConfigError(
                "%s: [database] prepared_statements: %r is not true or"
                " false." % (self.path, value))
        return value

    @property
    def database_uri(self) -> str:
        """The database URI, with relative SQLite paths made absolute
        (a ``JOBS_DATABASE_URI``'s against the current directory)."""
        confined = getattr(self, "_confined_uri", None)
        if confined is not None:
            return confined
        from_environment = os.environ.get("JOBS_DATABASE_URI")
        uri = from_environment or self.lazr.database.uri
        if not isinstance(uri, str):
            raise ConfigError("%s: [database] uri: %r is not a URI."
                              % (self.path, uri))
        scheme, _, rest = uri.partition(":")
        if scheme == "sqlite" and rest and not rest.startswith("/"):
            path, sep, options = rest.partition("?")
            if from_environment:
                path = os.path.abspath(path)
            else:
                path = self.resolve_path(path, "database", "uri")
            uri = "sqlite:%s%s%s" % (path, sep, options)
        return uri

    @property
    def error_dir(self) -> str:
        """The folder OOPS reports are written to."""
        return self.resolve_path(self._text("error_reports", "error_dir"),
                                 "error_reports", "error_dir")

    @property
    def error_host(self) -> str:
        """The name of this host in the OOPS index: ``[error_reports]
        host``, or the machine's name."""
        import socket
        return self._text("error_reports", "host") or socket.gethostname()

    @property
    def oops_prefix(self) -> str:
        """The prefix of OOPS reporters."""
        return self._text("error_reports", "oops_prefix")

    @property
    def redact(self) -> tuple[str, ...]:
        """The names whose values OOPS reports hide (tuple of str)."""
        return tuple(self._text("error_reports", "redact").lower().split())

    @property
    def lock_dir(self) -> str:
        """The folder of lock files."""
        return self.resolve_path(self._text("locks", "lock_dir"),
                                 "locks", "lock_dir")

    def _text(self, section: str, key: str) -> str:
        value = self.lazr[section][key]
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError("%s: [%s] %s: %r is not text."
                              % (self.path, section, key, value))
        return value

    @property
    def migrations(self) -> tuple[Any, ...]:
        """The application's `jobs.schema.Migrations`, from ``[components]
        migrations``, in order (the framework's not included)."""
        from jobs.schema import Migrations
        return tuple(Migrations(name, name) for name in self._text(
            "components", "migrations").split())

    @property
    def schedules(self) -> list[Schedule]:
        """The periodic schedules of the ``[schedule.NAME]`` sections (those
        of ``@task(schedule=...)`` are `jobs.scheduler`'s business).

        :raises ConfigError: when one is malformed.
        """
        return config_schedules(self)

    @property
    def workers(self) -> WorkerSettings:
        """The `WorkerSettings` of ``[workers]``.

        :raises ConfigError: when a value is malformed.
        """
        return WorkerSettings(self)

    @property
    def celery(self) -> CelerySettings:
        """The `CelerySettings` of ``[celery]``.

        :raises ConfigError: when a value is malformed.
        """
        return CelerySettings(self)

    @property
    def web(self) -> WebSettings:
        """The `WebSettings` of ``[web]`` (the dashboard).

        :raises ConfigError: when a value is malformed.
        """
        return WebSettings(self)

    def job_section(self, name: str) -> JobSection:
        """Return the `JobSection` called `name`.

        :raises ConfigError: when there is no such job section.
        """
        if name not in self.job_section_names:
            known = ", ".join(self.job_section_names) or "none"
            raise ConfigError(
                "Unknown job section %r in %s (job sections: %s)."
                % (name, self.path, known))
        return JobSection(self, name)


def load(name_or_path: Optional[str] = None) -> JobsConfig:
    """Load and validate a configuration instance.

    :param name_or_path: a ``.conf`` file or an instance name; default
        ``JOBS_CONFIG``, else ``development`` (a checkout's).
    :raises ConfigError: naming the file, section and key at fault.
    """
    name_or_path = name_or_path or os.environ.get("JOBS_CONFIG")
    if not name_or_path:
        try:
            path = resolve_instance(DEFAULT_INSTANCE)
        except ConfigError:
            raise ConfigError(
                "No configuration: set JOBS_CONFIG (or --config) to your"
                " application's .conf file, which may [meta] extends: base"
                " (see the README's quickstart).") from None
    else:
        path = resolve_instance(name_or_path)
    chain = read_chain(path)
    with open(SCHEMA_PATH, encoding="ascii") as f:
        schema_text = f.read()
    schema_sections = _schema_sections(schema_text)
    # The schema's categories ([schedule.master]): their [schedule.NAME]
    # sections are not job sections.
    categories = {name.partition(".")[0] for name in schema_sections
                  if name.endswith(".master")}
    job_sections: list[str] = []
    for _, parser in reversed(chain):
        for section in parser.sections():
            if section == "meta" or section in schema_sections or (
                    section.partition(".")[0] in categories):
                continue
            if section not in job_sections:
                job_sections.append(section)
    for section in job_sections:
        if not any(parser.has_option(section, key)
                   for _, parser in chain if parser.has_section(section)
                   for key in JOB_SECTION_KEYS):
            raise ConfigError(
                "%s: [%s] is not a section of the schema, nor a job section"
                " (it sets no source_interface or tasks)."
                % (_file_defining(chain, section), section))
    template = schema_sections[TEMPLATE_SECTION]
    full_schema = schema_text + "".join(
        "\n[%s]\n%s" % (section, template) for section in job_sections)
    try:
        schema = ImplicitTypeSchema(
            SCHEMA_PATH, file_object=io.StringIO(full_schema))
        lazr = LazrConfig(schema)
        for file_path, parser in reversed(chain):
            lazr.push(file_path, without_meta(parser))
        lazr.validate()
    except ConfigErrors as e:
        raise ConfigError("%s is not valid: %s" % (
            path, "; ".join(str(error) for error in e.errors))) from None
    except Exception as e:
        raise ConfigError("%s is not valid: %s" % (path, e)) from None
    config = JobsConfig(path, lazr, job_sections, chain)
    # A malformed schedule or [workers] fails the load.
    config_schedules(config)
    WorkerSettings(config)
    return config


def _file_defining(
        chain: list[tuple[str, configparser.RawConfigParser]],
        section: str) -> str:
    for file_path, parser in chain:
        if parser.has_section(section):
            return file_path
    return chain[0][0]


_current: Optional[JobsConfig] = None


def get_config() -> JobsConfig:
    """Return the current configuration, loading it on first use.

    :raises ConfigError: see `load`.
    """
    global _current
    if _current is None:
        _current = load()
    return _current


def set_config(config: Optional[JobsConfig]) -> None:
    """Make `config` the current configuration; None forgets the current
    one, so that the next `get_config` loads ``JOBS_CONFIG`` again (after
    a test or a script changed it)."""
    global _current
    _current = config

