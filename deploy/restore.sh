#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh into an empty database, then replay the erasures made
# since (docs/operations.md "Restore").
# Usage: deploy/restore.sh portal-<time>.dump.age keys-<time>.dump.age
# Env: DATABASE_URL (the table owner), BACKUP_AGE_IDENTITY, KEYS_AGE_IDENTITY (age identity files),
#      and the portal's own settings (master keys, AUDIT_HMAC_KEY, ERASURE_LOG_PATH) for the replay.
set -euo pipefail
: "${DATABASE_URL:?}" "${BACKUP_AGE_IDENTITY:?}" "${KEYS_AGE_IDENTITY:?}"
data="${1:?the portal-*.dump.age file}"
keys="${2:?the keys-*.dump.age file (the newest one)}"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

age --decrypt --identity "$BACKUP_AGE_IDENTITY" "$data" \
  | pg_restore --no-owner --no-privileges --exit-on-error --dbname "$DATABASE_URL"
age --decrypt --identity "$KEYS_AGE_IDENTITY" "$keys" \
  | pg_restore --data-only --exit-on-error --dbname "$DATABASE_URL"

stamp="$(basename "$data" | sed -E 's/^portal-([0-9TZ]+)\.dump\.age$/\1/')"
"$PYTHON" manage.py replay_erasures --since "$stamp"
"$PYTHON" manage.py migrate --noinput
echo "restored $data with $keys; erasures since $stamp replayed"
