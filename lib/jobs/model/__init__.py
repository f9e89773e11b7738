"""The model: the job row and the bases job authors extend.

Import them from here (each is loaded on first use)::

    from jobs.model import (BaseRunnableJob, BaseRunnableJobSource,
                            DerivedJob, EnumeratedSubclass, FunctionJob, Job)
"""

from typing import TYPE_CHECKING

from jobs import _lazy_exports

# public name -> the module that defines it
_API = {
    "BaseRunnableJob": "jobs.model.runnable",
    "BaseRunnableJobSource": "jobs.model.runnable",
    "DerivedJob": "jobs.model.derived",
    "EnumeratedSubclass": "jobs.model.enumeratedsubclass",
    "FunctionJob": "jobs.model.function",
    "Job": "jobs.model.job",
}

__all__ = sorted(_API)

if TYPE_CHECKING:
    from jobs.model.derived import DerivedJob
    from jobs.model.enumeratedsubclass import EnumeratedSubclass
    from jobs.model.function import FunctionJob
    from jobs.model.job import Job
    from jobs.model.runnable import BaseRunnableJob, BaseRunnableJobSource


__getattr__ = _lazy_exports(__name__, _API)
