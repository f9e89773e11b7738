-- Row security on job: a section's role (`jobs db roles`, jobs.roles)
-- reads and updates only its own jobs' rows.
-- job_role_kind: the kinds (job.kind, as LIKE patterns) whose jobs each
-- section role runs; written by `jobs db roles`. A role that has no row
-- here is not a section role (the login role, an application's): it
-- sees every row, as before.
CREATE TABLE job_role_kind (
    role text NOT NULL,
    kind_pattern text NOT NULL,
    PRIMARY KEY (role, kind_pattern)
);
-- The policies below ask these functions, which run as their owner (whom
-- row security does not restrict), so that no role needs privileges on
-- job_role_kind or job_dependency to read job, and each policy reads a
-- role's patterns once per statement (an InitPlan), not once per row.
-- job_role_kinds(role): its patterns; NULL for a role that is not a
-- section role.
CREATE FUNCTION job_role_kinds(text) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT array_agg(kind_pattern) FROM job_role_kind WHERE role = $1 $$;
-- job_depends_on_role(id, role): job `id` depends on one of role's jobs.
CREATE FUNCTION job_depends_on_role(integer, text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT EXISTS (SELECT 1 FROM job_dependency d JOIN job j
                         ON j.id = d.depends_on WHERE d.job = $1
                         AND j.kind LIKE ANY (job_role_kinds($2))) $$;
-- job_role_depends_on(id, role): one of role's jobs depends on job `id`.
CREATE FUNCTION job_role_depends_on(integer, text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT EXISTS (SELECT 1 FROM job_dependency d JOIN job j
                         ON j.id = d.job WHERE d.depends_on = $1
                         AND j.kind LIKE ANY (job_role_kinds($2))) $$;
ALTER TABLE job ENABLE ROW LEVEL SECURITY;
-- Every row, for roles that are not section roles.
CREATE POLICY job_unmanaged ON job
    USING ((SELECT job_role_kinds(current_user)) IS NULL);
-- A section role's own jobs.
CREATE POLICY job_own ON job
    USING (kind LIKE ANY ((SELECT job_role_kinds(current_user))::text[]));
-- The jobs that depend on its own: its outcomes settle them (count down,
-- cancel when its job fails).
CREATE POLICY job_dependent ON job
    USING ((SELECT job_role_kinds(current_user)) IS NOT NULL
           AND job_depends_on_role(id, current_user));
-- The jobs its own depend on, read only: their results (result_of).
CREATE POLICY job_dependency_of ON job FOR SELECT
    USING (has_dependents AND (SELECT job_role_kinds(current_user)) IS NOT NULL
           AND job_role_depends_on(id, current_user));
