-- Run once as the PostgreSQL superuser (sudo -u postgres psql -f roles.sql).
-- `lending` owns the database and its schema: `server serve` applies pending migrations on start,
-- so the role the service runs as is also the migrator. CREATEROLE lets `server migrate` create
-- and re-grant the public service's role (LENDING_MOBILE_DB_ROLE, default lending_mobile);
-- without it, leave LENDING_MOBILE_DB_PASSWORD unset and create that role yourself (below).
CREATE ROLE lending LOGIN CREATEROLE;
-- Password only if the server connects over TCP; over the Unix socket, peer authentication is used.
-- \password lending
CREATE DATABASE lending OWNER lending ENCODING 'UTF8' TEMPLATE template0;
-- The public role gets CONNECT explicitly from `server migrate`; nobody else needs it.
REVOKE CONNECT, TEMPORARY ON DATABASE lending FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE lending TO lending;

-- Alternative without CREATEROLE (ALTER ROLE lending NOCREATEROLE): after every `server migrate`
-- run the same grants ensure_mobile_role applies (lending/src/store/roles.rs):
--   CREATE ROLE lending_mobile LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '…';
--   GRANT CONNECT ON DATABASE lending TO lending_mobile;
--   \c lending
--   GRANT USAGE ON SCHEMA public TO lending_mobile;
--   REVOKE ALL ON ALL TABLES IN SCHEMA public FROM lending_mobile;
--   GRANT SELECT ON public_institution, public_device_help, public_revoked_tokens, public_version TO lending_mobile;
--   GRANT INSERT ON problem_reports TO lending_mobile;
