"""`check_json_data`: what a job's ``json_data`` may hold, checked when the
job is created.

A job's data is stored as JSON (``jsonb`` on PostgreSQL): it must be
JSON-serializable, hold no NUL character and no unpaired surrogate (both
of which ``jsonb`` refuses, with an error that would otherwise surface at
commit, far from the call that made the job), and stay small: every
runner that claims the job reads it, so bulk data belongs in a table of
the application's own.
"""

__all__ = ["MAX_JSON_DATA_BYTES", "check_json_data", "json_text",
           "result_text"]

import json
import re

from jobs.errors import InvalidJobData, InvalidJobResult, JobDataTooLarge

# The default size limit of one job's json_data, as UTF-8 JSON text.
MAX_JSON_DATA_BYTES = 1024 * 1024


# A NUL character's escape in JSON text: \u0000 after an even number of
# backslashes (an odd number would escape the first one).
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def check_json_data(data, limit=MAX_JSON_DATA_BYTES, what="json_data"):
    """Check that `data` can be stored as a job's ``json_data``.

    :param data: the value (usually a dict); None is allowed.
    :param limit: the largest size allowed, in bytes of UTF-8 JSON.
    :param what: what the messages call `data`.
    :return: the size in bytes.
    :raises InvalidJobData: when `data` is not JSON-serializable or holds
        text that PostgreSQL's ``jsonb`` refuses.
    :raises JobDataTooLarge: when its JSON is larger than `limit`.
    """
    return len(json_text(data, limit, what).encode("utf-8"))


def json_text(data, limit=MAX_JSON_DATA_BYTES, what="json_data"):
    """`check_json_data`, returning `data`'s JSON text (as Storm's JSON
    columns write it)."""
    try:
        text = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise InvalidJobData("%s is not JSON: %s." % (what, e)) from None
    # JSON writes a NUL as \u0000, and a backslash as \\.
    if "\\u0000" in text and _NUL.search(text):
        raise InvalidJobData(
            "%s holds a NUL character (\\u0000), which PostgreSQL's"
            " jsonb cannot store." % what)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidJobData(
            "%s holds text that is not valid Unicode (an unpaired"
            " surrogate): decode bytes before storing them." % what) from None
    if size > limit:
        raise JobDataTooLarge(
            "%s is %s bytes of JSON; the limit is %s. Keep bulk data in a"
            " table of your own and put its key in %s."
            % (what, format(size, ","), format(limit, ","), what))
    return text


def result_text(job, value):
    """The JSON text of `value`, what `job`'s ``run()`` returned, to store
    as its result (None for None).

    :raises InvalidJobResult: when `value` is not JSON or is larger than
        the job's ``max_result_bytes`` (default: its
        ``max_json_data_bytes``, 1 MiB): the job fails with it.
    """
    if value is None:
        return None
    limit = getattr(job, "max_result_bytes", None) or getattr(
        job, "max_json_data_bytes", MAX_JSON_DATA_BYTES)
    try:
        return json_text(value, limit, "the result of run()")
    except InvalidJobData as e:
        raise InvalidJobResult(
            "%s %s" % (type(job).__name__, str(e).replace(
                " Keep bulk data in a table of your own and put its key in"
                " the result of run().", " Return a key to data kept in a"
                " table of your own instead."))) from None
