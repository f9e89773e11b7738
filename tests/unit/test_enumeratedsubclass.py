"""EnumeratedSubclass: the job type registry."""

from lazr.enum import DBEnumeratedType, DBItem

from jobs.model.enumeratedsubclass import EnumeratedSubclass
from jobs.testing.testcase import TestCase


class Kind(DBEnumeratedType):
    ONE = DBItem(1, "One")
    TWO = DBItem(2, "Two")


class Context:
    def __init__(self, job_type):
        self.id = 7
        self.job_type = job_type


class TestEnumeratedSubclass(TestCase):

    def test_registers_and_makes_subclasses(self):
        class Base(metaclass=EnumeratedSubclass):
            def __init__(self, context):
                self.context = context

        class One(Base):
            class_job_type = Kind.ONE

        class Two(Base):
            class_job_type = Kind.TWO

        self.assertIsInstance(Base.makeSubclass(Context(Kind.ONE)), One)
        self.assertIsInstance(Base.makeSubclass(Context(Kind.TWO)), Two)

    def test_duplicate_registration_raises(self):
        class Base(metaclass=EnumeratedSubclass):
            pass

        class One(Base):
            class_job_type = Kind.ONE

        error = self.assertRaises(
            ValueError, type, "Again", (Base,), {"class_job_type": Kind.ONE})
        self.assertEqual("ONE already registered to One.", str(error))

    def test_families_have_separate_registries(self):
        class Base(metaclass=EnumeratedSubclass):
            pass

        class FamilyA(Base):
            context_class = "a"

        class FamilyB(Base):
            context_class = "b"

        class A1(FamilyA):
            class_job_type = Kind.ONE

        class B1(FamilyB):
            class_job_type = Kind.ONE

        self.assertIs(A1, FamilyA._subclass[Kind.ONE])
        self.assertIs(B1, FamilyB._subclass[Kind.ONE])
