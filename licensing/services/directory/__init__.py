"""Directory sync: users (with sign-in activity) and subscribed SKUs from Graph, per tenant.

Streamed: one Graph page (up to 999 users) is fetched, written and committed at a time with
the run's progress, so memory stays flat for any directory size and the UI can show how far
it got. Unchanged users cost one keyed hash comparison and no write. Every user write goes through
:func:`directory_user_upsert_from_graph`, which leaves privacy-locked fields alone.

- graph: the Graph adapter bound to one tenant (``graph_for``, the seam tests replace);
- sync: requesting and running a sync, the seat-pool refresh, task dispatch by name;
- upsert: the one write path from Graph into seat pools, directory users and their assignments;
- users: the admin's user actions through the outbox (create, password reset with a temporary password
  shown once, block and unblock sign-in); offboard: block, sign out, remove licenses, the mailbox choice.
  Import them by module (``from licensing.services.directory import users``): they build on the
  assignments services, which import this package.
"""

from .graph import DirectoryGraph, DirectoryNotLinked, TenantGraph, graph_for, linked_tenant  # noqa: F401
from .sync import (  # noqa: F401
    PAGE_SIZE,
    SKU_REFRESH_TASK,
    STALE_AFTER,
    SYNC_TASK,
    directory_sync_request,
    directory_sync_run,
    enqueue,
    enqueue_on_commit,
    tenant_skus_refresh,
    tenant_skus_refresh_later,
)
from .upsert import (  # noqa: F401
    GRAPH_FIELDS,
    SOURCE_HASH_PURPOSE,
    USER_SELECT,
    directory_user_upsert_from_graph,
    tenant_skus_upsert_from_graph,
)
