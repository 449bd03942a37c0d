"""The New Commerce subscription lifecycle: seats, cancellation, auto-renew, next-term changes,
suspension, and reconcile against Partner Center.

Every change is an outbox operation; the local row changes when Microsoft has answered, through
:func:`subscription_apply_remote`, the one write path from Partner Center's view to ours.
Rules that depend on time (windows, refunds) come from :mod:`licensing.nce`.

- ledger: :func:`subscription_apply_remote` and the change ledger;
- changes: the changes a customer asks for, and their outbox handlers (registered when this package
  is imported, which is why the modules are imported here);
- reductions: a reduction that releases chosen users' licenses first (the seat invariant, decision 011);
- reconcile: reconcile and refresh against Partner Center.
"""

from ..seats import SeatsStillAssigned, seat_warning_at_term_end  # noqa: F401
from .changes import (  # noqa: F401
    REFRESH_TASK,
    SubscriptionChangeError,
    subscription_cancel,
    subscription_change_quantity,
    subscription_clear_schedule,
    subscription_reactivate,
    subscription_reduction_plan,
    subscription_refresh_later,
    subscription_schedule_change,
    subscription_set_auto_renew,
    subscription_suspend,
)
from .ledger import subscription_apply_remote  # noqa: F401
from .reconcile import subscription_reconcile, subscription_refresh  # noqa: F401
