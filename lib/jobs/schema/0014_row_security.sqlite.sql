-- Row security on job is PostgreSQL's (see 0014_row_security.postgresql.sql):
-- SQLite has no roles, and every section runs as the file's user. The
-- table that names each section role's kinds of job is kept in both
-- dialects, so that they share one schema version.
CREATE TABLE job_role_kind (
    role TEXT NOT NULL,
    kind_pattern TEXT NOT NULL,
    PRIMARY KEY (role, kind_pattern)
);
