"""gunicorn's settings wherever the portal is served: `make run` (runportal), the Dockerfile, docker-compose and
the HTTP benchmark all start gunicorn in the project's root, where it reads this file by default.

Each worker process, once it has loaded the application, leaves what start-up built (Django, the apps, their
modules and caches: about 170,000 objects) out of the cyclic collector's scans, as Celery's worker processes do
(``portal.celery.freeze_startup_heap``; docs/decisions/051-web-workers-freeze-their-start-up-heap.md). Without
it, a full collection walks all of them during whichever request sets it off. The body is written here rather
than imported from the portal because the HTTP benchmark's bare Django project is served from the same root
with the same settings, and must not load the portal to get them.
"""

import gc


def post_worker_init(worker):
    gc.collect()
    gc.freeze()
