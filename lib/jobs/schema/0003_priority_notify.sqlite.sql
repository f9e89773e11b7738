-- Priority (higher first) for claiming. SQLite has no NOTIFY: workers
-- on SQLite poll.
ALTER TABLE job ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX job__waiting__idx;
CREATE INDEX job__waiting__idx ON job (priority DESC, id) WHERE status = 0;
