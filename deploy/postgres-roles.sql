-- The database roles of the production topology (docs/decisions/025-rls-without-a-bypass.md).
-- Run once, as the table owner (a superuser is needed for BYPASSRLS), with psql variables:
--   psql -v ON_ERROR_STOP=1 -v owner=portal_owner -v app_password=... -v system_password=... -f postgres-roles.sql
-- deploy/postgres-init.sh runs it in the compose file; benchmarks/stack.py runs it in its private cluster.
--
-- owner (:owner)   owns the tables and runs the migrations; RLS does not bind it. The app never uses it.
-- portal_app       every request and task: not the owner, NOBYPASSRLS, so row-level security binds it.
--                  It cannot SET ROLE portal_system (not a member) nor change a policy (not the owner).
-- portal_system    only the allow-listed reads that precede or span tenants (core.tenancy.unscoped_no_tenant,
--                  SYSTEM_DATABASE_URL): BYPASSRLS, not the owner, no DDL.
-- Safe to run again (a database set up before portal_system existed): existing roles are altered.
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_app') AS app_exists,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_system') AS system_exists \gset
\if :app_exists
ALTER ROLE portal_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
\else
CREATE ROLE portal_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
\endif
\if :system_exists
ALTER ROLE portal_system LOGIN PASSWORD :'system_password' NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
\else
CREATE ROLE portal_system LOGIN PASSWORD :'system_password' NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
\endif
-- The application role must never be able to become the system role.
REVOKE portal_system FROM portal_app;
GRANT USAGE ON SCHEMA public TO portal_app, portal_system;
-- Tables the owner creates later (every migration) are granted as they appear.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO portal_app, portal_system;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO portal_app, portal_system;
-- Tables that already exist (roles added to a database migrated before): the same grants.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portal_app, portal_system;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portal_app, portal_system;
