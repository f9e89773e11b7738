"""Hiding secrets in what the framework writes and shows.

Two rules, applied to every OOPS report, log line (stderr, ``--log-file``,
the job's ``log`` column), and the ``jobs`` command's and the web
dashboard's views:

- **by name**: the value of a variable, OOPS variable, JSON key or
  ``name=value`` / ``name: value`` in text whose name contains one of the
  configured names (``[error_reports] redact``; `DEFAULT_NAMES`);
- **by value**, whatever the names: the credentials of ``Authorization``
  headers (``Bearer``, ``Basic``, any scheme) and of a bearer token
  anywhere, the password of a ``scheme://user:password@host`` URI, and
  PEM private-key blocks (``-----BEGIN … PRIVATE KEY-----`` to its END
  line, or to the end of the text when it was cut).
"""

__all__ = ["DEFAULT_NAMES", "REDACTED", "Redactor", "safe_str"]

import re

REDACTED = "<redacted>"
# The schema's default of [error_reports] redact (kept equal by a test).
DEFAULT_NAMES = ("password", "passwd", "pwd", "secret", "token", "api_key",
                 "credential", "auth", "bearer", "private_key", "cookie",
                 "session")

# (guard, pattern, replacement), applied in order before the names; a
# pattern is tried only when its guard is in the lower-cased text (a
# worker's log lines hold none, and the patterns cost more than the rest
# of a line).
_VALUE_RULES = (
    # A PEM private key, to its END line or to the end of a cut text.
    ("private key", re.compile(
        r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(.*?)"
        r"(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.DOTALL),
     r"\1" + REDACTED + r"\3"),
    # Authorization: <scheme> <credentials> (a header, or as a key):
    # both hidden.
    ("authorization", re.compile(
        r"""(\b(?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)"""
        r"""(?:[a-z][\w-]*\s+(?=[^\s'"]))?[^\s'",;)}\]]+""",
        re.IGNORECASE),
     r"\1" + REDACTED),
    # Bearer <token> anywhere (tokens are long; "bearer of" is not one).
    ("bearer", re.compile(r"\b(bearer\s+)[\w\-.~+/]{8,}=*", re.IGNORECASE),
     r"\1" + REDACTED),
    # scheme://user:password@ -- the password part.
    ("://", re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@",
                       re.IGNORECASE),
     r"\1" + REDACTED + "@"),
)


class Redactor:
    """Hides secrets: by the names they go under, and by their look.

    :param names: lower-case name fragments, e.g. ``("password",)``.
    """

    def __init__(self, names):
        self.names = tuple(names)
        if self.names:
            fragment = "|".join(re.escape(name) for name in self.names)
            # name = 'value', name: "value", 'name': value, name=value
            self._pattern = re.compile(
                r"""(?P<key>['"]?\w*(?:%s)\w*['"]?\s*[:=]\s*)"""
                r"""(?P<value>'[^']*'|"[^"]*"|[^\s,;)}\]]+)""" % fragment,
                re.IGNORECASE)
        else:
            self._pattern = None
        # Any guard or name in the lower-cased text: most lines hold none,
        # and one search lets them through.
        self._suspect = re.compile("|".join(
            re.escape(word) for word in
            [guard for guard, _, _ in _VALUE_RULES] + list(self.names)))

    def is_secret(self, name):
        """True when `name` names a secret."""
        name = str(name).lower()
        return any(fragment in name for fragment in self.names)

    def text(self, text):
        """Return `text` with secrets hidden: values assigned to secret
        names, and the secrets found by their look (see the module)."""
        if not text:
            return text
        lowered = text.lower()
        if self._suspect.search(lowered) is None:
            return text
        for guard, pattern, replacement in _VALUE_RULES:
            if guard in lowered:
                text = pattern.sub(replacement, text)
        if self._pattern is None or not any(
                name in lowered for name in self.names):
            return text
        return self._pattern.sub(self._by_name, text)

    @staticmethod
    def _by_name(match):
        if match.group("value").strip("'\"") == REDACTED:
            return match.group(0)  # already hidden by its look
        return match.group("key") + REDACTED

    def data(self, value):
        """Return `value` (JSON-like: dicts, lists, text) with secrets
        hidden: a scalar under a secret name, and secrets in any text."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: REDACTED if self.is_secret(key) and not isinstance(
                    item, (dict, list, tuple)) else self.data(item)
                for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.data(item) for item in value)
        return value

    def pairs(self, pairs):
        """Return {name: str(value)} with secrets hidden."""
        return {
            str(name): REDACTED if self.is_secret(name)
            else self.text(safe_str(value))
            for name, value in pairs}


def safe_str(value):
    try:
        return str(value)
    except Exception as e:
        return "<str() failed: %s>" % type(e).__name__
