"""`JobFilter`: which jobs an operator means — by section, status, type,
creation time and OOPS fingerprint — as SQL the indexes answer.

The dashboard's job list and bulk actions, and the ``jobs retry`` and
``jobs cancel`` filters, all choose jobs here. A section is turned into
its kinds (`jobs.kinds`), a fingerprint into the jobs of its indexed
OOPS reports: no join with a context table.
"""

__all__ = ["JobFilter"]

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Optional

from storm.expr import Desc, Select

from jobs.model.job import Job
from jobs.model.oopsreport import OopsReport


@dataclass(frozen=True)
class JobFilter:
    """Jobs matching every given criterion (an empty filter: every job).

    :ivar sections: section names (any of them).
    :ivar statuses: `JobStatus` items (any of them).
    :ivar kinds: ``job.kind`` values (any of them).
    :ivar since: created at or after (aware datetime).
    :ivar until: created before (aware datetime).
    :ivar fingerprint: jobs with an OOPS report of this fingerprint.
    """

    sections: tuple = ()
    statuses: tuple = ()
    kinds: tuple = ()
    since: Optional[datetime] = None
    until: Optional[datetime] = None
    fingerprint: Optional[str] = None

    @property
    def empty(self):
        """True when nothing narrows the filter."""
        return not (self.sections or self.statuses or self.kinds
                    or self.since or self.until or self.fingerprint)

    def narrowed(self, **changes):
        """A copy with `changes` (e.g. ``statuses=(FAILED,)``)."""
        return replace(self, **changes)

    def conditions(self, store, config):
        """Storm conditions on `Job` (a list; none for an empty filter)."""
        from jobs.kinds import kinds_of_sections
        conditions = []
        if self.statuses:
            conditions.append(Job.status.is_in(list(self.statuses)))
        kinds = set(self.kinds)
        if self.sections:
            section_kinds = set(kinds_of_sections(store, config,
                                                  self.sections))
            kinds = kinds & section_kinds if self.kinds else section_kinds
            if not kinds:
                conditions.append(Job.id == None)  # noqa: E711 nothing
        if kinds:
            conditions.append(Job.kind.is_in(sorted(kinds)))
        if self.since is not None:
            conditions.append(Job.date_created >= self.since)
        if self.until is not None:
            conditions.append(Job.date_created < self.until)
        if self.fingerprint:
            conditions.append(Job.id.is_in(Select(
                OopsReport.job_id,
                where=OopsReport.fingerprint == self.fingerprint,
                distinct=True)))
        return conditions

    def page(self, store, config, before=None, size=50):
        """One page of matching jobs, newest first: keyset pagination on
        id (`before`: the last id of the previous page), so a page costs
        the same on page 1 and page 10,000.

        :return: ``(jobs, next_before)``; `next_before` is None on the
            last page.
        """
        conditions = self.conditions(store, config)
        if before is not None:
            conditions.append(Job.id < before)
        jobs = list(store.find(Job, *conditions).order_by(
            Desc(Job.id))[:size + 1])
        if len(jobs) > size:
            return jobs[:size], jobs[size - 1].id
        return jobs, None

    def ids(self, store, config, batch=1000, after=0):
        """Every matching job id, ascending, read `batch` at a time (a
        generator of lists)."""
        conditions = self.conditions(store, config)
        while True:
            ids = list(store.find(Job.id, Job.id > after, *conditions)
                       .order_by(Job.id)[:batch])
            if not ids:
                return
            yield ids
            after = ids[-1]
