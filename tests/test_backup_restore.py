"""Restore drill: dump, drop, restore, and the portal works; crypto-shredding holds across it.

Runs the real scripts (deploy/backup.sh, deploy/restore.sh) with pg_dump, pg_restore and age
against a database of its own on the PostgreSQL server the suite uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("pg_dump", "pg_restore", "age", "age-keygen", "psql")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES,
                       reason="the restore drill needs PostgreSQL"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason=f"needs {', '.join(TOOLS)} (apt install postgresql-client age)"),
]

MAKE_DATA = """
from accounts.models import Organization, User
from core.audit import Actor
from core.keys import data_key_destroy, parse_scope
org = Organization.objects.create(legal_name="Drill Ltd", slug="drill", tax_id="GB123456789")
kept = User.objects.create_user(email="kept@drill.example", password="a-long-password-1")
shredded_before = User.objects.create_user(email="before@drill.example", password="a-long-password-1")
data_key_destroy(scope=parse_scope(f"subject:{shredded_before.pk}"), actor=Actor.system("drill"))
print(kept.pk, shredded_before.pk)
"""

SHRED = """
from core.audit import Actor
from core.keys import data_key_destroy, parse_scope
data_key_destroy(scope=parse_scope("subject:{pk}"), actor=Actor.system("drill"))
"""

CHECK = """
from accounts.models import Organization, User
def email_of(pk):
    try:
        return User.objects.get(pk=pk).email
    except Exception as exc:
        return type(exc).__name__
print(Organization.objects.get(slug="drill").tax_id)
for pk in {pks!r}:
    print(email_of(pk))
"""


def _database_url(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def _run(args, env, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _shell(code: str, env) -> str:
    return _run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], env).stdout.strip()


def _keypair(path: Path) -> str:
    _run(["age-keygen", "-o", str(path)], os.environ.copy())
    return next(line.split(": ", 1)[1] for line in path.read_text().splitlines() if "public key" in line)


def test_dump_drop_restore_keeps_data_and_shredding(tmp_path):
    name = f"portal_drill_{uuid.uuid4().hex[:8]}"
    url = _database_url(name)
    admin = _database_url("postgres")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ERASURE_LOG_PATH": str(tmp_path / "erasure-log.jsonl"),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "KEYS_BACKUP_DIR": str(tmp_path / "key-backups"),
        "BACKUP_AGE_RECIPIENT": _keypair(tmp_path / "data.key"),
        "KEYS_AGE_RECIPIENT": _keypair(tmp_path / "keys.key"),
        "BACKUP_AGE_IDENTITY": str(tmp_path / "data.key"),
        "KEYS_AGE_IDENTITY": str(tmp_path / "keys.key"),
        "PYTHON": sys.executable,
    }
    env.pop("REDIS_URL", None)
    _run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], env)
    try:
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
        kept, shredded_before = _shell(MAKE_DATA, env).split()
        _run(["bash", "deploy/backup.sh"], env)
        data = next((tmp_path / "backups").glob("portal-*.dump.age"))
        keys = next((tmp_path / "key-backups").glob("keys-*.dump.age"))
        assert b"Drill Ltd" not in data.read_bytes() and b"SQLite" not in data.read_bytes()  # encrypted files
        # A person signs up after the backup: only the live data had them.
        joined_after = _shell(
            'from accounts.models import User; print(User.objects.create_user(email="after@drill.example", '
            'password="a-long-password-1").pk)', env)
        # This user was in the backup with a live key, and is shredded after it was taken.
        _shell(SHRED.format(pk=kept), env)

        _run(["psql", admin, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], env)
        _run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], env)
        _run(["bash", "deploy/restore.sh", str(data), str(keys)], env)

        lines = _shell(CHECK.format(pks=[kept, shredded_before, joined_after]), env).splitlines()
        assert lines[0] == "GB123456789"  # business data decrypts with the kept keys
        assert lines[1] != "kept@drill.example"  # shredded after the backup: replayed from the erasure log
        assert lines[2] != "before@drill.example"  # shredded before the backup: its key was never in it
        assert lines[3] == "DoesNotExist"  # signed up after the backup: not in it
        assert lines[1] == lines[2] == "DecryptionError"
    finally:
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], env=env,
                       capture_output=True, check=False)
