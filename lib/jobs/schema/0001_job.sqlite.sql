-- The shared job table: one row per job, whatever its type.
-- AUTOINCREMENT: an id is never reused, so an OOPS report or a stale
-- runner can never point at a different job.
CREATE TABLE job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status INTEGER NOT NULL DEFAULT 0,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 0,
    scheduled_start TEXT,
    lease_expires TEXT,
    date_created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    date_started TEXT,
    date_finished TEXT,
    log TEXT,
    base_job_type INTEGER,
    base_json_data TEXT
);
