-- Where DoFooJob records its running window ("window" behaviour) through
-- a connection of its own that commits at once: the reliability tests of
-- concurrency limits read how many windows of one key overlapped.
CREATE TABLE job_window (
    job integer NOT NULL,
    key text NOT NULL,
    started timestamp with time zone NOT NULL,
    ended timestamp with time zone
);
