"""Storm's private API, used by the `jobs.database.stormext` package only,
is still there: a Storm release that renamed or removed a name breaks
this test first, loudly, naming what changed."""

import importlib
import os

import storm
from testtools import TestCase

from jobs.database import stormext

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "lib", "jobs")


def owner(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def has_name(cls, name):
    """`name` is an attribute of `cls`, or set on its instances (Storm
    sets most private state in ``__init__``, some in ``__slots__``)."""
    if hasattr(cls, name):
        return True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        code = getattr(init, "__code__", None)
        if code is not None and (name in code.co_names
                                 or name in code.co_consts):
            return True
        if name in getattr(klass, "__slots__", ()):
            return True
    return False


class TestStormPrivateNames(TestCase):

    def test_every_private_name_exists_in_the_installed_storm(self):
        missing = ["%s.%s" % (dotted, name)
                   for dotted, name in stormext.PRIVATE_NAMES
                   if not has_name(owner(dotted), name)]
        self.assertEqual(
            [], missing,
            "Storm %s changed its private API: jobs.database.stormext"
            " must be updated." % storm.version)

    def test_no_other_module_uses_storms_private_names(self):
        names = {name for _, name in stormext.PRIVATE_NAMES
                 if name.startswith("_")} | {"get_obj_info"}
        package = os.path.dirname(stormext.__file__)
        offenders = []
        for folder, _, files in os.walk(LIB):
            if folder == package:
                continue
            for file_name in files:
                path = os.path.join(folder, file_name)
                if not file_name.endswith(".py"):
                    continue
                with open(path) as f:
                    text = f.read()
                offenders += ["%s: %s" % (os.path.relpath(path, LIB), name)
                              for name in sorted(names)
                              if "." + name in text or
                              "import " + name in text]
        self.assertEqual([], offenders)
