"""The one place where utilities are registered.

``[components] register`` names functions (dotted names) that each take a
zope.component registry and register an application's job sources. The
framework registers its own components here too: Celery dispatch, when a
section sends its jobs to Celery. Scripts call `register_components` once
at start-up.
"""

__all__ = ["register_components"]

# Object events reach the handlers registered in the component registry.
import zope.component.event  # noqa: F401
from zope.component import getGlobalSiteManager
from zope.dottedname.resolve import resolve

from jobs.celery import dispatch
from jobs.errors import ConfigError


def register_components(config, registry=None):
    """Call every configured registration function with `registry`.

    :param registry: default: the global site manager.
    :raises ConfigError: when a name cannot be imported or called.
    """
    registry = registry or getGlobalSiteManager()
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
    if any(config.job_section(name).celery_dispatch
           for name in config.job_section_names):
        dispatch.register(registry)
