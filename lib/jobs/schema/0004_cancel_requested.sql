-- A request to cancel a RUNNING job: its runner stops it (the process
-- runner kills its child) and records CANCELLED (status 5).
ALTER TABLE job ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
