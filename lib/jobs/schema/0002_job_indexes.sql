-- Claiming reads only waiting jobs and running jobs whose lease may have
-- expired: partial indexes keep that cheap however many finished jobs
-- the table holds, and need no fresh statistics to be chosen.
CREATE INDEX job__waiting__idx ON job (scheduled_start, id) WHERE status = 0;
CREATE INDEX job__running__lease_expires__idx ON job (lease_expires) WHERE status = 1;
CREATE INDEX job__status__id__idx ON job (status, id);
