-- The shared job table: one row per job, whatever its type.
-- Times are naive UTC ("timestamp without time zone"), written by the
-- framework from the database clock.
CREATE TABLE job (
    id serial PRIMARY KEY,
    status integer NOT NULL DEFAULT 0,
    attempt_count integer NOT NULL DEFAULT 0,
    max_retries integer NOT NULL DEFAULT 0,
    scheduled_start timestamp without time zone,
    lease_expires timestamp without time zone,
    date_created timestamp without time zone NOT NULL
        DEFAULT (CURRENT_TIMESTAMP AT TIME ZONE 'UTC'),
    date_started timestamp without time zone,
    date_finished timestamp without time zone,
    log text,
    base_job_type integer,
    base_json_data jsonb
);
