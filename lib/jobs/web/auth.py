"""Who may use the dashboard: HTTP basic with an scrypt-hashed password,
and/or a user name set by a trusted reverse proxy.

`hash_password` makes the ``[web] password_hash`` value
(``scrypt$N$r$p$salt$hash``, base64; ``jobs web --hash-password``);
`DashboardSecurity` is the Pyramid security policy. With no
authentication configured, everyone is let in — and `jobs.cli.web`
refuses to listen anywhere but on a loopback address.
"""

__all__ = ["DashboardSecurity", "hash_password", "verify_password"]

import base64
import binascii
import hashlib
import hmac
import os
import threading

from pyramid.security import Allowed, Denied

SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
KEY_BYTES = 32


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def hash_password(password, salt=None):
    """The ``scrypt$N$r$p$salt$hash`` text of `password`."""
    salt = salt or os.urandom(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt,
                         dklen=KEY_BYTES, **SCRYPT)
    return "scrypt$%d$%d$%d$%s$%s" % (SCRYPT["n"], SCRYPT["r"], SCRYPT["p"],
                                      _b64(salt), _b64(key))


def verify_password(password, hashed):
    """True when `password` is the one `hashed` (`hash_password`) was
    made from; False for any other password or a malformed hash."""
    try:
        scheme, n, r, p, salt, key = hashed.split("$")
        if scheme != "scrypt":
            return False
        salt, key = base64.b64decode(salt), base64.b64decode(key)
        found = hashlib.scrypt(password.encode("utf-8"), salt=salt,
                               n=int(n), r=int(r), p=int(p), dklen=len(key))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(found, key)


class DashboardSecurity:
    """The Pyramid security policy of `jobs.web` (see the module).

    :param settings: the `jobs.settings.WebSettings`.
    """

    def __init__(self, settings):
        self.settings = settings
        # Digests of Authorization headers already verified: scrypt is
        # slow on purpose, and a browser sends the header with every
        # request.
        self._verified = set()
        self._lock = threading.Lock()

    def identity(self, request):
        """The user's name, or None."""
        settings = self.settings
        if not settings.authenticates:
            return "anonymous"
        if settings.trusted_header and (
                request.remote_addr in settings.trusted_proxies):
            user = request.headers.get(settings.trusted_header)
            if user:
                return user
        if settings.user:
            return self._basic(request)
        return None

    def _basic(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        digest = hashlib.sha256(header.encode("utf-8", "replace")).digest()
        with self._lock:
            if digest in self._verified:
                return self.settings.user
        try:
            user, _, password = base64.b64decode(
                encoded).decode("utf-8").partition(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if user != self.settings.user or not verify_password(
                password, self.settings.password_hash):
            return None
        with self._lock:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified.add(digest)
        return user

    def authenticated_userid(self, request):
        return request.identity

    def permits(self, request, context, permission):
        if request.identity is None:
            return Denied("Authentication is required.")
        return Allowed("Authenticated.")

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []
