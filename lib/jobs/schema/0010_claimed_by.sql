-- job.claimed_by: who holds the job's current claim, set by the claim:
-- "<host>:<pid>/<backend pid>/<backend start, epoch seconds>" (the runner
-- process, and, on PostgreSQL, its database session). A runner that takes
-- over a job whose runner was lost ends that runner's session if it still
-- sits in a transaction (a frozen runner's locks), and operators can see
-- who holds what.
ALTER TABLE job ADD COLUMN claimed_by text;
