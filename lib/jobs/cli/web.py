"""``jobs web``: serve the dashboard (`jobs.web`) with waitress; ``jobs
web --hash-password``: the ``[web] password_hash`` of a password."""

__all__ = ["add_commands"]

import copy
import getpass
import re
import sys

from jobs.config import get_config
from jobs.runoptions import at_least_one
from jobs.errors import CommandError


def _web_extra():
    try:
        import waitress

        from jobs.web import make_app
        from jobs.web.auth import hash_password
    except ImportError as e:
        raise CommandError("The dashboard needs the web extra (pip install"
                           " 'jobs[web]'): %s" % e) from None
    return waitress, make_app, hash_password


def read_password():
    """A password from the terminal (asked twice), or stdin's first line."""
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("The passwords differ.")
    if not password:
        raise CommandError("An empty password is not a password.")
    return password


def settings_of(config, listen=None):
    """The ``[web]`` settings, `listen` (HOST:PORT) overriding; refuses
    what must not be served."""
    settings = config.web
    if listen:
        match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d+)", listen)
        if match is None or not match[1]:
            raise CommandError("--listen %r is not HOST:PORT." % listen)
        settings = copy.copy(settings)
        settings.host, settings.port = match[1], int(match[2])
    if not settings.enabled:
        raise CommandError("The dashboard is off: set [web] enabled: true in"
                           " %s." % config.path)
    if not settings.authenticates and not settings.loopback:
        raise CommandError(
            "Refusing to listen on %s with no authentication: configure"
            " [web] user and password_hash (jobs web --hash-password) or"
            " trusted_header, or listen on 127.0.0.1." % settings.host)
    return settings


def cmd_web(options):
    waitress, make_app, hash_password = _web_extra()
    if options.hash_password:
        print(hash_password(read_password()))
        return
    config = get_config()
    settings = settings_of(config, options.listen)
    app = make_app(config, settings)
    print("Serving the dashboard on http://%s:%d/ (Ctrl-C stops it)." % (
        settings.host if ":" not in settings.host else
        "[%s]" % settings.host, settings.port), flush=True)
    waitress.serve(app, host=settings.host, port=settings.port,
                   threads=options.threads, ident="jobs",
                   _quiet=True)


def add_commands(commands, parser_class):
    """Add ``web`` to `commands` (argparse)."""
    web = commands.add_parser(
        "web", help="serve the dashboard and /metrics ([web] enabled,"
        " listen, authentication)")
    web.add_argument("--listen", metavar="HOST:PORT",
                     help="instead of [web] listen")
    web.add_argument("--threads", type=at_least_one, default=4,
                     help="waitress worker threads (default 4)")
    web.add_argument("--hash-password", action="store_true",
                     help="print the [web] password_hash of a password"
                     " (asked, or read from stdin) and exit")
    web.set_defaults(run=cmd_web)
