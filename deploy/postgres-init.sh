#!/bin/sh
# The application role (not the table owner, without BYPASSRLS, so row-level security binds it) and
# the system role (BYPASSRLS, only for the allow-listed cross-tenant reads). deploy/postgres-roles.sql.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$POSTGRES_USER" \
    -v app_password="$PORTAL_APP_DB_PASSWORD" \
    -v system_password="$PORTAL_SYSTEM_DB_PASSWORD" \
    -f /docker-entrypoint-initdb.d/postgres-roles.sql.in
