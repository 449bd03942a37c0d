"""Run Celery beat only while holding a Redis lock, so a deployment has exactly one scheduler.

A second ``run_beat`` (a replica started by mistake, or the old container during a rolling
restart) waits as a standby and takes over when the holder's lock expires. The holder renews
the lock every third of its lifetime; if it ever fails to, it exits so the container restarts
instead of running beside a new holder. ``--check`` (the container healthcheck) succeeds when
some process holds the lock.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.celery import app as celery_app

LOCK_KEY = "portal:celery-beat:lock"


class Command(BaseCommand):
    help = "Run Celery beat as the single scheduler, guarded by a Redis lock."

    def add_arguments(self, parser):
        parser.add_argument("--lock-seconds", type=int, default=60)
        parser.add_argument("--check", action="store_true", help="exit 0 if a beat holds the lock")
        parser.add_argument("--schedule", default=os.path.join(settings.VAR_DIR, "celerybeat-schedule"))

    def handle(self, *args, lock_seconds, check, schedule, **options):
        if not settings.REDIS_URL:
            raise CommandError("run_beat needs REDIS_URL: the lock lives in Redis. `make run` runs beat itself.")
        client = redis.Redis.from_url(settings.REDIS_URL)
        if check:
            sys.exit(0 if client.exists(LOCK_KEY) else 1)
        holder = f"{socket.gethostname()}:{os.getpid()}"
        lock = client.lock(LOCK_KEY, timeout=lock_seconds, thread_local=False)
        while not lock.acquire(blocking=True, blocking_timeout=lock_seconds):
            self.stdout.write(f"beat standby: another scheduler holds {LOCK_KEY}")
        self.stdout.write(f"beat lock acquired by {holder}")
        threading.Thread(target=self._keep, args=(lock, lock_seconds), daemon=True).start()
        celery_app.Beat(schedule=schedule, loglevel="INFO").run()

    def _keep(self, lock, lock_seconds: int) -> None:
        while True:
            time.sleep(lock_seconds / 3)
            try:
                if not lock.reacquire():
                    raise RuntimeError("lock lost")
            except Exception as exc:  # the lock is gone: stop scheduling at once, let the container restart
                self.stderr.write(f"beat lost its lock ({exc}); exiting")
                os._exit(3)
