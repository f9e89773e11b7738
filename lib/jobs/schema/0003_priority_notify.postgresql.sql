-- Priority (higher first) for claiming, and a NOTIFY on channel
-- jobs_ready whenever a job becomes WAITING (created or re-queued), so
-- that workers wake at once. NOTIFY is delivered on commit, and
-- identical notifications within one transaction are delivered once.
ALTER TABLE job ADD COLUMN priority integer NOT NULL DEFAULT 0;
DROP INDEX job__waiting__idx;
CREATE INDEX job__waiting__idx ON job (priority DESC, id) WHERE status = 0;
CREATE FUNCTION jobs_notify_ready() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM pg_notify(''jobs_ready'', ''''); RETURN NULL; END';
CREATE TRIGGER job__notify_ready AFTER INSERT OR UPDATE OF status ON job FOR EACH ROW WHEN (NEW.status = 0) EXECUTE FUNCTION jobs_notify_ready();
