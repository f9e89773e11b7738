-- A running job's progress tree (JSON text), written in its own short
-- transaction so that it is visible while the job runs and survives the
-- job's rollback.
ALTER TABLE job ADD COLUMN progress text;
