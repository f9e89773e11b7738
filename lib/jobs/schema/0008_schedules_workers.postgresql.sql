-- Periodic schedules (jobs.scheduler): one row per tick that was
-- enqueued. Its primary key makes each tick happen once however many
-- runners look: a runner inserts the tick (ON CONFLICT DO NOTHING) and,
-- only when the insert took, creates the tick's job in the same
-- transaction. tick is the cron time in naive UTC; job is the job it
-- created (NULL once that job is pruned).
CREATE TABLE schedule_tick (
    schedule text NOT NULL,
    tick timestamp without time zone NOT NULL,
    job integer REFERENCES job (id) ON DELETE SET NULL,
    PRIMARY KEY (schedule, tick)
);
-- Live runners (jobs.presence): one row per runner process (a cron run,
-- a worker, a Celery worker process), inserted when it starts, beaten
-- every beat_seconds, deleted when it stops. jobs holds the JSON array
-- of the [job, attempt] pairs it holds now. A row whose last beat is
-- older than a few beats is a lost runner's.
CREATE TABLE worker (
    id serial PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    kind text NOT NULL,
    sections text NOT NULL,
    started timestamp without time zone NOT NULL,
    last_beat timestamp without time zone NOT NULL,
    beat_seconds double precision NOT NULL,
    jobs text NOT NULL DEFAULT '[]',
    stop_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX worker__last_beat__idx ON worker (last_beat);
