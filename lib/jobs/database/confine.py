"""What a process child that runs a section's job code is left with.

A section with a ``dbuser`` runs its jobs connected as that role
(`jobs.roles`). In a process child (``--processes``) the job code shares
its interpreter with nothing else of the framework's, so the child holds
no way back to the login role at all:

- it is started without the variables that carry the login role's
  credentials (`LOGIN_VARIABLES`: ``JOBS_DATABASE_URI``, and
  ``PGPASSWORD`` when it runs as a role);
- it is told the URI to use — the configured one with the role as its
  user and no password (`jobs.database.role_uri`) — and its
  configuration is confined to it (`JobsConfig.confine_to`): the
  ``main`` store, ``get_config().database_uri`` and ``jobs.database``'s
  `connect` / `set_role` all lead to the role.

Files the OS user can read (the configuration file, ``~/.pgpass``) are
the OS's business: see the README's role sections.
"""

__all__ = ["LOGIN_VARIABLES", "child_uri", "without_login_variables"]

import contextlib
import os

from jobs.database.store import role_uri, storm_uri

# The environment variables that may carry the login role's credentials.
LOGIN_VARIABLES = ("JOBS_DATABASE_URI", "PGPASSWORD")


def child_uri(uri, role):
    """The database URI a child of a section running as `role` (None: the
    login role) connects to: `uri` as `role`, without its password, on
    PostgreSQL; else `uri`."""
    if role is None or not storm_uri(uri).startswith("jobs-postgres:"):
        return uri
    return role_uri(storm_uri(uri), role).replace(
        "jobs-postgres:", "postgres:", 1)


@contextlib.contextmanager
def without_login_variables(role):
    """Within the block, processes started inherit none of
    `LOGIN_VARIABLES` (``PGPASSWORD`` is kept for a section without a
    role, whose child logs in with it)."""
    names = [name for name in LOGIN_VARIABLES
             if role is not None or name != "PGPASSWORD"]
    saved = {name: os.environ.pop(name) for name in names
             if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
