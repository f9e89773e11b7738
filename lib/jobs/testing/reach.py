"""Job code that reaches for the login role (the isolation tests).

``reach_for_login(job)`` tries every way a process child's job code has
to the database, and writes what each gave to the job's foo's note, as
JSON ``{route: the session user it got, or the error's first line}``:

- ``main_store``: ``get_zstorm().get("main")``, the framework's store;
- ``configured_uri``: a connection of its own to
  ``get_config().database_uri``;
- ``login_role``: ``jobs.database.set_role(None)`` (the login role),
  then `get_store`;
- ``environment``: the login-role variables the process was started
  with (``JOBS_DATABASE_URI``, ``PGPASSWORD``), from ``/proc/self/environ``.
"""

__all__ = ["reach_for_login"]

import json

import psycopg2

from jobs.config import get_config
from jobs.database import get_zstorm, set_role


def _session_user(store):
    return store.execute("SELECT session_user").get_one()[0]


def _first_line(error):
    return (str(error).splitlines() or [type(error).__name__])[0]


def _own_connection(uri):
    connection = psycopg2.connect(uri)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT session_user")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def _environment():
    with open("/proc/self/environ", "rb") as f:
        names = [entry.partition(b"=")[0].decode() for entry in
                 f.read().split(b"\0") if entry]
    return sorted(set(names) & {"JOBS_DATABASE_URI", "PGPASSWORD"})


def reach_for_login(job):
    """See the module's docstring."""
    found = {}
    for route, reach in (
            ("main_store", lambda: _session_user(get_zstorm().get("main"))),
            ("configured_uri",
             lambda: _own_connection(get_config().database_uri)),
            ("login_role", lambda: _session_user(set_role(None))),
            ("environment", _environment)):
        try:
            found[route] = reach()
        except Exception as e:
            found[route] = _first_line(e)
    job.context.foo.note = json.dumps(found, sort_keys=True)
