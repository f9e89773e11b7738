"""OOPS report files: private, and never left half written.

`oops_datedir_repo.DateDirRepo` makes every report readable by all (files
0644, date folders 0755, whatever the umask) and leaves its ``.tmp``
file behind when a write fails or is interrupted. `PrivateDateDirRepo`
writes the same files, read back by the same code, but:

- each report is created 0600 and its date folder (and the error folder,
  when it makes it) 0700, whatever the umask: reports hold tracebacks,
  local variables and job data;
- the ``.tmp`` file is opened without following a symlink and must not
  exist yet (``O_EXCL | O_NOFOLLOW``), and is removed when anything
  fails or interrupts the write (an exception, SIGTERM's
  ``KeyboardInterrupt``): only whole reports are ever renamed into
  place. What a writer killed mid-write leaves (``kill -9``, a process
  that exits at the end of its grace period) is removed by the next
  reporter: `remove_stale_temporaries`.
"""

__all__ = ["DIR_MODE", "FILE_MODE", "PrivateDateDirRepo", "STALE_SECONDS",
           "make_private_dir"]

import datetime
import glob
import hashlib
import os
import time

from oops_datedir_repo import DateDirRepo, serializer_bson

FILE_MODE = 0o600
DIR_MODE = 0o700
# A .tmp older than this was left by a writer that died: no write takes
# that long.
STALE_SECONDS = 3600.0


def make_private_dir(path):
    """Create folder `path` (and its parents) if needed; one this call
    creates is made `DIR_MODE`, whatever the umask."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        make_private_dir(parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return  # made by a concurrent writer
    os.chmod(path, DIR_MODE)


class PrivateDateDirRepo(DateDirRepo):
    """See the module's docstring."""

    def publish(self, report, now=None):
        """Write `report` (see `DateDirRepo.publish`); return its id."""
        now = (now or datetime.datetime.now(datetime.timezone.utc)
               ).astimezone(datetime.timezone.utc)
        original_report = report
        report = dict(report)
        oopsid = "OOPS-%s" % hashlib.md5(
            serializer_bson.dumps(report)).hexdigest()
        prefix = os.path.join(self.root, now.strftime("%Y-%m-%d"))
        make_private_dir(prefix)
        filename = os.path.join(prefix, oopsid)
        if self.inherit_id:
            oopsid = report.get("id") or oopsid
        report["id"] = oopsid
        temporary = filename + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                fd = None
                self.serializer.write(report, f)
            os.rename(temporary, filename)
        except BaseException:
            if fd is not None:
                os.close(fd)
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        if self.stash_path:
            original_report["datedir_repo_filepath"] = filename
        return [report["id"]]

    def remove_stale_temporaries(self, now=None):
        """Remove the ``.tmp`` files of the two latest date folders that
        are older than `STALE_SECONDS`; return their paths."""
        now = time.time() if now is None else now
        removed = []
        for folder in sorted(glob.glob(os.path.join(self.root, "2*")))[-2:]:
            for path in glob.glob(os.path.join(folder, "OOPS-*.tmp")):
                try:
                    if now - os.lstat(path).st_mtime > STALE_SECONDS:
                        os.unlink(path)
                        removed.append(path)
                except OSError:
                    continue  # gone meanwhile: another reporter's sweep
        return removed
