"""The one place where utilities are registered.

``[components] path`` puts the application's folders on ``sys.path``;
``[components] register`` names functions (dotted names) that each take a
zope.component registry and register an application's job sources; the
modules job sections' ``tasks`` name are imported, which registers their
``@task`` functions (`jobs.tasks`). The framework registers its own
components here too: Celery dispatch, when a section sends its jobs to
Celery. Scripts call `register_components` once
at start-up.
"""

__all__ = ["add_import_paths", "import_tasks", "register_components",
           "setup"]

import importlib
import sys
from typing import Optional

# Object events reach the handlers registered in the component registry.
import zope.component.event  # noqa: F401
from zope.component import getGlobalSiteManager
from zope.dottedname.resolve import resolve

from jobs.celery import dispatch
from jobs.config import JobsConfig, get_config, load, set_config
from jobs.database import connect
from jobs.errors import ConfigError


def register_components(config, registry=None):
    """Call every configured registration function with `registry`.

    :param registry: default: the global site manager.
    :raises ConfigError: when a name cannot be imported or called.
    """
    registry = registry or getGlobalSiteManager()
    add_import_paths(config)
    names = config.lazr["components"]["register"] or ""
    for name in str(names).split():
        try:
            function = resolve(name)
        except (ImportError, AttributeError, ValueError) as e:
            raise ConfigError(
                "%s: [components] register: cannot import %s: %s"
                % (config.path, name, e)) from None
        if not callable(function):
            raise ConfigError(
                "%s: [components] register: %s is not a function."
                % (config.path, name))
        function(registry)
    import_tasks(config)
    if any(config.job_section(name).celery_dispatch
           for name in config.job_section_names):
        dispatch.register(registry)


def add_import_paths(config):
    """Put the folders of ``[components] path`` at the front of
    ``sys.path`` (once each), where the application's modules are."""
    paths = config.lazr["components"]["path"] or ""
    for path in reversed(str(paths).split()):
        folder = config.resolve_path(path, "components", "path")
        if folder not in sys.path:
            sys.path.insert(0, folder)


def _task_modules(patterns):
    """The modules `patterns` name: ``pkg.mod.*`` and ``pkg.mod.f`` both
    name ``pkg.mod``; ``*`` names none."""
    modules = []
    for pattern in patterns:
        if pattern == "*":
            continue
        module = pattern[:-2] if pattern.endswith(".*") else (
            pattern.rpartition(".")[0])
        if module and module not in modules:
            modules.append(module)
    return modules


def import_tasks(config):
    """Import the modules the job sections' ``tasks`` name, so that their
    ``@task`` functions register (`jobs.tasks`).

    :raises ConfigError: naming the section and the module that cannot
        be imported.
    """
    for name in config.job_section_names:
        settings = config.job_section(name)
        for module in _task_modules(settings.tasks):
            try:
                importlib.import_module(module)
            except Exception as e:
                raise ConfigError(
                    "%s: [%s] tasks: cannot import %s: %s: %s" % (
                        config.path, name, module, type(e).__name__,
                        e)) from None


def setup(name_or_path: Optional[str] = None) -> JobsConfig:
    """Make an application process ready to create and run jobs: load the
    configuration, register the ``[components] register`` functions'
    utilities and connect the ``main`` store to ``[database] uri``.

    Then ``jobs.database.get_store()`` is the store to create jobs with,
    in the ``transaction`` package's current transaction.

    :param name_or_path: as for `load`; default ``JOBS_CONFIG``.
    :return: the configuration, now current.
    :raises ConfigError: see `load`, and for a registration function that
        cannot be imported.
    :raises DatabaseError: for an unsupported database URI.
    """
    config = load(name_or_path) if name_or_path else get_config()
    set_config(config)
    register_components(config)
    connect(config.database_uri)
    return config
