"""Lean context rows (`jobs.model.lean`): read in one statement, the
ORM only when the job's code needs it, ``self.context.foo`` unchanged."""

import gc
import json
from collections import OrderedDict

import transaction
from storm.locals import Int
from storm.properties import SimpleProperty
from storm.variables import JSONVariable
from storm.store import Store
from storm.tracer import install_tracer, remove_tracer

from jobs.database import get_store, prepared
from jobs.database.columns import DBEnumVariable
from jobs.model.lean import (
    LeanContext, load_contexts, settle, storm_object)
from jobs.testing.foojob import DoFooJob, FooJob
from jobs.testing.testcase import DatabaseTestCase, on_each_database


class Statements:

    def __init__(self):
        self.sent = []

    def connection_raw_execute(self, connection, raw_cursor, statement,
                               params):
        self.sent.append(prepared.sql_of(statement))


@on_each_database
class TestLeanContexts(DatabaseTestCase):

    def setUp(self):
        super().setUp()
        self.statements = Statements()

    def trace(self):
        install_tracer(self.statements)
        self.addCleanup(remove_tracer, self.statements)

    def make_jobs(self, count, **behaviour):
        job_ids = [self.factory.makeDoFooJob(**behaviour).job_id
                   for _ in range(count)]
        transaction.commit()
        return job_ids

    def load(self, job_ids):
        jobs = DoFooJob.getJobs(job_ids)
        self.assertEqual(job_ids, [job.job_id for job in jobs])
        return jobs

    def test_a_group_is_read_in_one_statement_without_storm_objects(self):
        job_ids = self.make_jobs(3, note="x")
        self.trace()
        jobs = self.load(job_ids)
        for job in jobs:
            self.assertIsInstance(job.context, LeanContext)
            self.assertEqual({"note": "x"}, job.context.json_data)
            self.assertIsInstance(job.context.foo_id, int)
            self.assertIsNone(storm_object(job.context))
            self.assertIsNone(Store.of(job.context))
        sent = [statement for statement in self.statements.sent
                if not statement.startswith("PREPARE")]
        self.assertEqual(1, len(sent), sent)
        self.assertIn("FROM foo_job", sent[0])

    def test_the_orm_is_built_from_the_row_read_when_code_needs_it(self):
        [job_id] = self.make_jobs(1)
        [job] = self.load([job_id])
        self.trace()
        foo_job = job.context.storm_object()
        self.assertEqual([], [s for s in self.statements.sent
                              if "FROM foo_job" in s])
        self.assertIsInstance(foo_job, FooJob)
        self.assertIs(get_store(), Store.of(foo_job))
        self.assertIs(foo_job, storm_object(job.context))
        # A reference goes through the Storm object, as before.
        self.assertEqual(foo_job.foo_id, job.context.foo.id)
        self.assertIs(foo_job, get_store().get(FooJob, foo_job.id))

    def test_writes_go_through_the_orm(self):
        [job_id] = self.make_jobs(1)
        [job] = self.load([job_id])
        job.context.json_data = {"written": True}
        transaction.commit()
        self.assertEqual({"written": True},
                         DoFooJob.get(job_id).context.json_data)

    def test_a_json_value_changed_in_place_is_written_when_settled(self):
        [job_id] = self.make_jobs(1, note="x")
        [job] = self.load([job_id])
        job.context.json_data["changed"] = 1
        self.assertIsNone(storm_object(job.context))
        settle(job.context)
        transaction.commit()
        self.assertEqual({"note": "x", "changed": 1},
                         DoFooJob.get(job_id).context.json_data)

    def test_an_unchanged_json_value_settles_without_the_orm(self):
        [job_id] = self.make_jobs(1, note="x")
        [job] = self.load([job_id])
        self.assertEqual("x", job.context.json_data["note"])
        settle(job.context)
        self.assertIsNone(storm_object(job.context))

    def test_a_job_type_is_converted_once_not_once_a_job(self):
        job_ids = self.make_jobs(4)
        converted = []
        real = DBEnumVariable.parse_set

        def parse_set(variable, value, from_db):
            converted.append(value)
            return real(variable, value, from_db)

        self.patch(DBEnumVariable, "parse_set", parse_set)
        jobs = self.load(job_ids)
        self.assertEqual({DoFooJob}, {type(job) for job in jobs})
        self.assertEqual([DoFooJob.class_job_type] * 4,
                         [job.context.job_type for job in jobs])
        # Once in this process at most (an earlier test may have read it).
        self.assertLessEqual(len(converted), 1)

    def stored_as(self, job_id, text):
        """Job `job_id`'s json_data stored as `text` (not in the form
        Python's json module writes)."""
        self.store.execute("UPDATE foo_job SET json_data = ? WHERE job = ?",
                           (text, job_id))
        transaction.commit()

    def test_json_text_in_another_form_is_unchanged_if_not_changed(self):
        # The text as read is the snapshot; when it is not in the form
        # Storm writes (spacing, 1.50, an escaped letter) the value read
        # is compared serialized, as before: no false change.
        [job_id] = self.make_jobs(1)
        self.stored_as(job_id, '{"n":1.50,  "s": "\\u00e9", "l": [1,2]}')
        [job] = self.load([job_id])
        self.assertEqual({"n": 1.5, "s": "\u00e9", "l": [1, 2]},
                         job.context.json_data)
        settle(job.context)
        self.assertIsNone(storm_object(job.context))

    def test_json_text_in_another_form_changed_in_place_is_written(self):
        [job_id] = self.make_jobs(1)
        self.stored_as(job_id, '{"n":1.50,  "l": [1,2]}')
        [job] = self.load([job_id])
        job.context.json_data["l"].append(3)
        settle(job.context)
        transaction.commit()
        self.assertEqual({"n": 1.5, "l": [1, 2, 3]},
                         DoFooJob.get(job_id).context.json_data)

    def test_a_json_value_made_to_hold_itself_fails_as_storm_fails(self):
        # The settling check does not look for cycles: the value is
        # handed to Storm, whose own error says what is wrong.
        [job_id] = self.make_jobs(1)
        [job] = self.load([job_id])
        job.context.json_data["self"] = job.context.json_data
        settle(job.context)
        self.assertIsNotNone(storm_object(job.context))
        error = self.assertRaises(ValueError, get_store().flush)
        self.assertIn("Circular reference", str(error))

    def test_columns_read_are_plain_attributes_until_the_orm_is_built(self):
        [job_id] = self.make_jobs(1, note="x")
        [job] = self.load([job_id])
        context = job.context
        # The JSON and the job type were read with the row; the rest
        # when first asked for.
        self.assertTrue({"json_data", "job_type"} <= set(vars(context)))
        self.assertNotIn("foo_id", vars(context))
        foo_id = context.foo_id
        self.assertIsInstance(foo_id, int)
        self.assertIn("foo_id", vars(context))
        context.storm_object()
        # From then on, everything is the Storm object's.
        self.assertEqual({}, vars(context))
        self.assertEqual(foo_id, context.foo_id)
        self.assertEqual(foo_id, context.foo.id)

    def test_a_change_in_place_is_carried_over_to_the_orm(self):
        [job_id] = self.make_jobs(1, note="x")
        [job] = self.load([job_id])
        job.context.json_data["changed"] = 2
        foo_job = job.context.storm_object()
        self.assertEqual({"note": "x", "changed": 2}, foo_job.json_data)
        transaction.commit()
        self.assertEqual({"note": "x", "changed": 2},
                         DoFooJob.get(job_id).context.json_data)

    def test_a_json_column_of_its_own_kind_is_read_by_its_variable(self):
        # A context class whose JSON column parses its text its own way
        # (not Storm's plain JSON) is read through its Storm variable,
        # and a change in place is still written when settled.
        [job_id] = self.make_jobs(1, note="x")
        [context] = load_contexts(OrderedFooJob, [job_id]).values()
        self.assertIsInstance(context.json_data, OrderedDict)
        self.assertEqual(OrderedDict(note="x"), context.json_data)
        settle(context)
        self.assertIsNone(storm_object(context))
        context.json_data["changed"] = 2
        settle(context)
        self.assertIsNotNone(storm_object(context))
        transaction.commit()
        self.assertEqual({"note": "x", "changed": 2},
                         DoFooJob.get(job_id).context.json_data)


class OrderedJSONVariable(JSONVariable):
    """JSON whose objects are read as `OrderedDict`s."""

    __slots__ = ()

    def _loads(self, value):
        return json.loads(value, object_pairs_hook=OrderedDict)


class OrderedJSON(SimpleProperty):
    variable_class = OrderedJSONVariable


class OrderedFooJob:
    """`FooJob`'s table, its JSON read by a variable of its own kind."""

    __storm_table__ = "foo_job"

    id = Int(primary=True)
    job_id = Int(name="job", allow_none=False)
    json_data = OrderedJSON()


@on_each_database
class TestLongLivedHeap(DatabaseTestCase):

    def test_a_run_freezes_what_lives_as_long_as_the_process(self):
        # The collector's full collections then skip the start-up heap
        # (modules, registry); collection itself stays on.
        from jobs.runner import JobRunner
        self.factory.makeDoFooJob()
        transaction.commit()
        JobRunner.fromReady(DoFooJob).runAll()
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertTrue(gc.isenabled())


class TestClaimReadsTheContexts(DatabaseTestCase):
    """PostgreSQL: the claim statement returns the claimed jobs' context
    rows (`jobs.model.lean.ContextJoin`)."""

    __test__ = True
    database_kind = "postgresql"

    def test_claimed_jobs_come_loaded(self):
        jobs = [self.factory.makeDoFooJob(note="x") for _ in range(3)]
        transaction.commit()
        claimed = DoFooJob.claimReady(2)
        self.assertEqual([job.job_id for job in jobs[:2]],
                         [one.job.job_id for one in claimed])
        self.assertIsInstance(claimed[0].job.context, LeanContext)
        self.assertEqual({"note": "x"}, claimed[0].job.context.json_data)

    def test_a_run_of_jobs_committed_one_by_one_sends_no_context_select(self):
        from jobs.runner import JobRunner
        from jobs.sections import RunSettings
        for _ in range(3):
            self.factory.makeDoFooJob()
        transaction.commit()
        statements = Statements()
        install_tracer(statements)
        self.addCleanup(remove_tracer, statements)
        JobRunner(source=DoFooJob,
                  settings=RunSettings(batch_size=1)).runAll()
        self.assertEqual([], [s for s in statements.sent
                              if s.startswith("SELECT foo_job")])
        self.assertEqual(3, self.store.execute(
            "SELECT count(*) FROM job WHERE status = 2").get_one()[0])
