"""Storm's JSON columns, parsed and serialized without a Storm variable.

Storm's own JSON variables parse a value with ``json.loads(text)`` and
serialize it with ``json.dumps(value, ensure_ascii=False)``. A lean
context (`jobs.model.lean`) reads and settles a job's JSON the same way,
with the C scanner and encoder that those calls wrap, made once here:
the Python steps around them cost a µs a job in a group.
"""

__all__ = ["decode_json", "encode_json", "plain_json"]

import json
from json import encoder as json_encoder
from json import scanner as json_scanner

from storm.databases.postgres import JSONVariable as PostgresJSONVariable
from storm.variables import JSONVariable

_encoder = json.JSONEncoder(ensure_ascii=False)
_c_encoder = json_encoder.c_make_encoder and json_encoder.c_make_encoder(
    None, _encoder.default, json_encoder.encode_basestring, None,
    _encoder.key_separator, _encoder.item_separator, False, False, True)
_scan = json_scanner.make_scanner(json.JSONDecoder())
_STORM_JSON_LOADS = (JSONVariable._loads, PostgresJSONVariable._loads)


def encode_json(value):
    """``json.dumps(value, ensure_ascii=False)``. It does not look for
    circular references: a value that holds itself raises RecursionError
    here, and then Storm's own error when it is written."""
    if _c_encoder is None:
        return _encoder.encode(value)
    return "".join(_c_encoder(value, 0))


def decode_json(text):
    """``json.loads(text)``: the scanner alone when `text` is one value
    with nothing around it (as PostgreSQL prints a jsonb value); anything
    else, errors included, as ``json.loads`` takes it."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):
        end = None
    if end != len(text):
        return json.loads(text)
    return value


def plain_json(variable_class):
    """Whether `variable_class` is Storm's JSON, parsed and serialized as
    `decode_json` and `encode_json` do."""
    return (issubclass(variable_class, JSONVariable)
            and variable_class._loads in _STORM_JSON_LOADS
            and variable_class._dumps is JSONVariable._dumps)
