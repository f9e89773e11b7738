"""``result_of(job)``: an argument of a function job (``@task``) that is
replaced, when the job runs, by the result of `job` (JobControl's
``!retval``).

The marker is stored in the job's JSON arguments as ``{"$result_of":
<job id>}`` (anywhere: an argument, an item of a list, a value of a
dict); the job depends on each job it names, so it runs once they have
completed (`jobs.model.dependencies`).
"""

from __future__ import annotations

__all__ = ["ResultOf", "marked_ids", "resolved", "result_of"]

from typing import Any, Callable

from jobs.model.options import job_ids

KEY = "$result_of"


class ResultOf(dict):  # type: ignore[type-arg]
    """``{"$result_of": job_id}``: a dict, so that it is JSON as it is."""

    def __init__(self, job_id: int):
        super().__init__({KEY: job_id})
        self.job_id = job_id

    def __repr__(self) -> str:
        return "result_of(%d)" % self.job_id


def result_of(job: Any) -> ResultOf:
    """The result of `job` (a job, or a job id), as an argument of a
    ``@task`` call: ``summarize.delay(result_of(fetch_job))``."""
    [job_id] = job_ids([job])
    return ResultOf(job_id)


def _is_marker(value: Any) -> bool:
    return (isinstance(value, dict) and len(value) == 1 and KEY in value
            and isinstance(value[KEY], int))


def _walk(value: Any, replace: Callable[[int], Any]) -> Any:
    if _is_marker(value):
        return replace(value[KEY])
    if isinstance(value, list):
        return [_walk(item, replace) for item in value]
    if isinstance(value, dict):
        return {key: _walk(item, replace) for key, item in value.items()}
    return value


def marked_ids(*values: Any) -> set[int]:
    """The job ids of the markers in `values`."""
    found: set[int] = set()

    def note(job_id: int) -> None:
        found.add(job_id)

    for value in values:
        _walk(value, note)
    return found


def resolved(value: Any, results: dict[int, Any]) -> Any:
    """`value` with each marker replaced by its job's result."""
    return _walk(value, lambda job_id: results.get(job_id))
