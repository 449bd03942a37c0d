#!/usr/bin/env bash
# Encrypted backup of the portal's database, in two parts (docs/operations.md "Backups"):
#   portal-<time>.dump.age  everything except the data keys      -> BACKUP_DIR, kept BACKUP_KEEP_DAYS (35)
#   keys-<time>.dump.age    the wrapped data keys only            -> KEYS_BACKUP_DIR, kept KEYS_KEEP_DAYS (7)
# Keys are kept apart and for less time, so a subject crypto-shredded more than KEYS_KEEP_DAYS ago
# cannot come back from any backup. Both parts are encrypted with age before they are written.
# Env: DATABASE_URL, BACKUP_DIR, KEYS_BACKUP_DIR, BACKUP_AGE_RECIPIENT, KEYS_AGE_RECIPIENT.
set -euo pipefail
: "${DATABASE_URL:?}" "${BACKUP_DIR:?}" "${KEYS_BACKUP_DIR:?}" "${BACKUP_AGE_RECIPIENT:?}" "${KEYS_AGE_RECIPIENT:?}"
BACKUP_KEEP_DAYS="${BACKUP_KEEP_DAYS:-35}"
KEYS_KEEP_DAYS="${KEYS_KEEP_DAYS:-7}"
umask 077
mkdir -p "$BACKUP_DIR" "$KEYS_BACKUP_DIR"
# Taken before the dump starts: erasures from this moment on are replayed after a restore.
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
data="$BACKUP_DIR/portal-$stamp.dump.age"
keys="$KEYS_BACKUP_DIR/keys-$stamp.dump.age"

pg_dump --format=custom --no-owner --no-privileges --exclude-table-data=security_datakey "$DATABASE_URL" \
  | age --encrypt --recipient "$BACKUP_AGE_RECIPIENT" > "$data.partial"
mv "$data.partial" "$data"
pg_dump --format=custom --data-only --table=security_datakey "$DATABASE_URL" \
  | age --encrypt --recipient "$KEYS_AGE_RECIPIENT" > "$keys.partial"
mv "$keys.partial" "$keys"

find "$BACKUP_DIR" -name 'portal-*.dump.age' -mtime "+$BACKUP_KEEP_DAYS" -delete
find "$KEYS_BACKUP_DIR" -name 'keys-*.dump.age' -mtime "+$KEYS_KEEP_DAYS" -delete
echo "backup $stamp: $data, $keys"
