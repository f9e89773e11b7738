-- Periodic schedules (jobs.scheduler): one row per tick that was
-- enqueued. Its primary key makes each tick happen once however many
-- runners look: a runner inserts the tick (ON CONFLICT DO NOTHING) and,
-- only when the insert took, creates the tick's job in the same
-- transaction. tick is the cron time in naive UTC; job is the job it
-- created (NULL once that job is pruned).
CREATE TABLE schedule_tick (
    schedule TEXT NOT NULL,
    tick TEXT NOT NULL,
    job INTEGER REFERENCES job (id) ON DELETE SET NULL,
    PRIMARY KEY (schedule, tick)
);
-- Live runners (jobs.presence): one row per runner process (a cron run,
-- a worker, a Celery worker process), inserted when it starts, beaten
-- every beat_seconds, deleted when it stops. jobs holds the JSON array
-- of the [job, attempt] pairs it holds now. A row whose last beat is
-- older than a few beats is a lost runner's. AUTOINCREMENT: an id is
-- never reused, so `jobs cancel --worker ID` never stops another one.
CREATE TABLE worker (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sections TEXT NOT NULL,
    started TEXT NOT NULL,
    last_beat TEXT NOT NULL,
    beat_seconds REAL NOT NULL,
    jobs TEXT NOT NULL DEFAULT '[]',
    stop_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX worker__last_beat__idx ON worker (last_beat);
