"""How a function job's call is checked and stored: its arguments must
fit the function's signature and be JSON (`Calls`)."""

from __future__ import annotations

__all__ = ["Calls"]

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from jobs.errors import InvalidJobData, InvalidJobOption
from jobs.model.jsondata import json_text
from jobs.model.options import OPTION_NAMES, job_ids
from jobs.model.resultof import marked_ids
from jobs.model.rows import Encoded

# The JSON of a call without keyword arguments (most calls).
NO_KEYWORDS = Encoded("{}")


def shape_of(signature: inspect.Signature
             ) -> Optional[tuple[list[str], set[str], set[str]]]:
    """``(positional names, all names, required names)`` of a signature
    of named parameters only; None for one with ``*args``, ``**kwargs``
    or positional-only parameters."""
    positional: list[str] = []
    names: set[str] = set()
    required: set[str] = set()
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
            positional.append(parameter.name)
        elif parameter.kind is not parameter.KEYWORD_ONLY:
            return None
        names.add(parameter.name)
        if parameter.default is parameter.empty:
            required.add(parameter.name)
    return positional, names, required


class Calls:
    """The calls of one task (`jobs.tasks.Task`).

    :param name: the task's dotted name, for messages.
    :param function: the task's function.
    :param max_json_data_bytes: the largest JSON of the arguments.
    """

    def __init__(self, name: str, function: Callable[..., Any],
                 max_json_data_bytes: int):
        self.name = name
        self.max_json_data_bytes = max_json_data_bytes
        self._signature = inspect.signature(function)
        self._shape = shape_of(self._signature)

    def check(self, args: Any, kwargs: Any
              ) -> tuple[list[Any], dict[str, Any]]:
        """`args` and `kwargs` checked against the function's signature:
        ``(list, dict)`` (`encoded` checks them as JSON).

        :raises InvalidJobData: naming the task.
        """
        if type(args) is tuple or type(args) is list:
            arguments = list(args)
        elif isinstance(args, (str, bytes, Mapping)) or not isinstance(
                args, Iterable):
            raise InvalidJobData(
                "Task %s: args must be a tuple or list, not %r."
                % (self.name, args))
        else:
            arguments = list(args)
        if kwargs is None:
            keywords: dict[str, Any] = {}
        elif isinstance(kwargs, Mapping):
            keywords = dict(kwargs)
        else:
            raise InvalidJobData("Task %s: kwargs must be a dict, not %r."
                                 % (self.name, kwargs))
        if not self.fits(arguments, keywords):
            try:
                self._signature.bind(*arguments, **keywords)
            except TypeError as e:
                raise InvalidJobData("Task %s: %s." % (self.name, e)) from None
        return arguments, keywords

    def encoded(self, arguments: list[Any], keywords: dict[str, Any]
                 ) -> tuple[Encoded, Encoded]:
        """The JSON text of the arguments, checked (`json_text`).

        :raises InvalidJobData: naming the task.
        """
        what = "the arguments of task %s" % self.name
        return (Encoded(json_text(arguments, self.max_json_data_bytes, what)),
                Encoded(json_text(keywords, self.max_json_data_bytes, what))
                if keywords else NO_KEYWORDS)

    def rows(self, calls: Iterable[Any]) -> list[dict[str, Any]]:
        """The rows `jobs.model.enqueue.bulk_create` takes for `calls`
        (see `jobs.tasks.Task.bulk`): checked and encoded arguments, and
        each call's own options; a `jobs.result_of` argument adds its job
        to the call's ``depends_on``.

        :raises InvalidJobOption: for an unknown option, naming it.
        :raises InvalidJobData: see `check` and `encoded`.
        """
        rows = []
        for call in calls:
            if isinstance(call, Mapping):
                given = dict(call)
                unknown = set(given) - set(OPTION_NAMES) - {"args", "kwargs"}
                if unknown:
                    raise InvalidJobOption(
                        "%s.bulk: unknown option(s) %s (use args, kwargs, %s)."
                        % (self.name, ", ".join(sorted(unknown)),
                           ", ".join(OPTION_NAMES)))
                arguments, keywords = self.check(
                    given.pop("args", ()), given.pop("kwargs", None))
                row = given
            else:
                arguments, keywords = self.check(call, None)
                row = {}
            marked = marked_ids(arguments, keywords)
            if marked:
                row["depends_on"] = sorted(
                    marked.union(job_ids(row.get("depends_on"))))
            row["args"], row["kwargs"] = self.encoded(arguments, keywords)
            rows.append(row)
        return rows

    def fits(self, arguments: list[Any], keywords: dict[str, Any]) -> bool:
        """True when the function takes these arguments: a quick test for
        a signature of named parameters (`inspect.Signature.bind` costs
        ten times more), else ``bind``'s answer."""
        shape = self._shape
        if shape is None:
            try:
                self._signature.bind(*arguments, **keywords)
            except TypeError:
                return False
            return True
        positional, names, required = shape
        if len(arguments) > len(positional):
            return False
        given = set(positional[:len(arguments)])
        for name in keywords:
            if name not in names or name in given:
                return False
        return required <= given.union(keywords)
