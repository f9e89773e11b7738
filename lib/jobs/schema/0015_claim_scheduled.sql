-- The claim reads waiting jobs in two parts (jobs.model.claims): those
-- with no scheduled_start, in priority order from an index of only them,
-- and those whose scheduled_start has come, by a range of scheduled_start.
-- A million jobs scheduled for tomorrow are then never walked past at a
-- claim. The second index holds only scheduled jobs (a range of
-- scheduled_start implies it is not NULL): an undelayed job, the common
-- kind, costs its insert one index less.
CREATE INDEX job__waiting__undelayed__idx ON job (priority DESC, id) WHERE status = 0 AND scheduled_start IS NULL;
CREATE INDEX job__waiting__scheduled__idx ON job (scheduled_start) WHERE status = 0 AND scheduled_start IS NOT NULL;
