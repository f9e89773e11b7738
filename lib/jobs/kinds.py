"""Which section a job belongs to, by its ``kind``, without a join.

A section's jobs are those its source's ``jobCondition`` matches (a join
with its context table); every job the framework creates also says its
type in ``job.kind`` (indexed), and one kind belongs to one section. So
the sections of the kinds in the table are found once, by testing one job
of each kind against each section's condition, and kept for a minute:
counts, filters and metrics by section then read only the ``kind``
index.
"""

__all__ = ["NO_SECTION", "distinct_kinds", "forget", "kinds_of_sections",
           "section_conditions", "sections_of_kinds",
           "sections_seeing_kinds"]

import time

from jobs.model.job import Job

# The section label of jobs no configured section's source matches (or
# with no kind: rows made before job.kind, or by hand).
NO_SECTION = "(none)"
CACHE_SECONDS = 60.0

_cache = {}

# Every distinct kind through the index on kind, one probe each (a loose
# index scan), however many rows each kind has.
_DISTINCT_KINDS = (
    "WITH RECURSIVE k(kind) AS ("
    " SELECT min(kind) FROM job"
    " UNION ALL"
    " SELECT (SELECT min(kind) FROM job WHERE kind > k.kind) FROM k"
    " WHERE k.kind IS NOT NULL)"
    " SELECT kind FROM k WHERE kind IS NOT NULL")


def distinct_kinds(store):
    """The kinds of the job table's rows, sorted."""
    return [row[0] for row in store.execute(_DISTINCT_KINDS)]


def section_conditions(config):
    """``{section name: (condition, tables)}`` of the configured job
    sections whose source says which jobs are its own (`jobCondition`),
    in the configuration's order; a seed-style source (iterReady only)
    cannot say and is left out."""
    from collections import OrderedDict

    from jobs.errors import SectionError
    from jobs.sections import find_section_source
    types = OrderedDict()
    for name in config.job_section_names:
        try:
            source = find_section_source(config, name)
            types[name] = source.jobCondition()
        except (SectionError, AttributeError, NotImplementedError):
            continue
    return types


def sections_seeing_kinds(store, config, now=None, max_age=CACHE_SECONDS):
    """``{kind: [section name, ...]}`` for every kind in the table: the
    sections whose source sees a job of that kind (several sections may
    share one source), in the configuration's order; ``[]`` when none
    does. Cached for `max_age` seconds (0: found now)."""
    now = time.monotonic() if now is None else now
    key = (id(config), str(store.get_database()))
    cached = _cache.get(key)
    # The cache keeps the config itself: another config cannot take its
    # id while it is kept.
    if cached is not None and cached[2] is config \
            and now - cached[0] < max_age:
        return cached[1]
    types = section_conditions(config)
    found = {}
    for kind in distinct_kinds(store):
        found[kind] = []
        sample = list(store.find(Job.id, Job.kind == kind).order_by(
            Job.id)[:1])
        if not sample:
            continue
        for name, (condition, tables) in types.items():
            if store.using(Job, *tables).find(
                    Job.id, condition, Job.id == sample[0]).any() is not None:
                found[kind].append(name)
    _cache[key] = (now, found, config)
    return found


def sections_of_kinds(store, config, now=None):
    """``{kind: section name}`` for every kind in the table: the first
    section that sees it (`sections_seeing_kinds`), or `NO_SECTION`."""
    return {kind: names[0] if names else NO_SECTION for kind, names in
            sections_seeing_kinds(store, config, now).items()}


def kinds_of_sections(store, config, sections):
    """The kinds of `sections` (names), sorted."""
    wanted = set(sections)
    return sorted(kind for kind, section in sections_of_kinds(
        store, config).items() if section in wanted)


def forget():
    """Forget the cached sections (a test that changes them)."""
    _cache.clear()
