"""What a person is told when an operation gives up: one place that turns Microsoft's typed errors
into plain, actionable sentences.

Microsoft's own text ("Subscription quantity cannot be decreased.") says what happened in its terms
and nothing about what to do next. The outbox stores that text in ``last_error`` and the code in
``last_error_code`` for staff; customers read :func:`failure_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass

from licensing.microsoft import errors as ms

# Most specific class first: the first ``isinstance`` match wins.
MESSAGES: list[tuple[type[ms.MicrosoftError], str]] = [
    (ms.SeatDecreaseNotAllowed,
     "No seats can be removed now: every batch of seats is past its 7-day window. "
     "Schedule the reduction for the next term instead."),
    (ms.CancellationWindowClosed,
     "The 7-day cancellation window has closed, so Microsoft no longer allows a cancellation. "
     "Turn off auto-renew so the subscription ends with its term, or schedule fewer seats for the next term."),
    (ms.CustomerAgreementMissing,
     "The Microsoft Customer Agreement has not been accepted for this tenant. "
     "Accept it on the Microsoft tenant page, then try again."),
    (ms.NotEnoughLicenses,
     "There are no free seats of this license left. Buy more seats or remove the license from someone "
     "who no longer needs it, then try again."),
    (ms.UsageLocationMissing,
     "The user has no usage location. Set the user's country in Microsoft 365, sync the directory, then try again."),
    (ms.SkuNotInTenant,
     "This license is not part of your Microsoft tenant. Sync the directory; if it is still missing, buy a "
     "subscription for it first."),
    (ms.ObjectConflict,
     "Another user or group in your Microsoft tenant already uses this name. Choose another user name."),
    (ms.PasswordRejected,
     "Your tenant's password policy refused the temporary password. Try again: a new one is generated."),
    (ms.LimitExceeded,
     "Microsoft's limits do not allow this change (too many subscriptions, seats or changes). "
     "Choose a smaller change or contact support."),
    (ms.MfaClaimMissing,
     "Microsoft requires multi-factor sign-in for this change and our connection lacked it. "
     "Our support team has been notified; try again later."),
    (ms.Forbidden,
     "Microsoft did not give us permission to make this change in your tenant. Check that the admin "
     "relationship (GDAP) on the Microsoft tenant page is active, then try again."),
    (ms.AuthenticationFailed,
     "We could not sign in to Microsoft for your tenant. Check the Microsoft tenant page; our support team "
     "has been notified."),
    (ms.NotFound,
     "Microsoft no longer knows this item: it may have been changed or removed outside the portal. "
     "Check the page and try again if needed."),
    (ms.Conflict,
     "Microsoft is busy with another change to this item. Wait a few minutes and try again."),
    (ms.Throttled,
     "Microsoft asked us to slow down and did not accept the change in time. Try again in a few minutes."),
    (ms.TransientFailure,
     "Microsoft did not answer in time, even after several tries. Try again later; our support team can see "
     "what happened."),
    (ms.InvalidRequest,
     "Microsoft refused this change. Check the values you entered and try again, or contact support with the "
     "reference shown on the operation."),
]

# Partner Center codes that the typed classes do not tell apart but a customer can act on.
CODE_MESSAGES: dict[str, str] = {
    **dict.fromkeys(["900275", "2002"],
                    "Microsoft does not allow this quantity for this offer: choose a number of seats within the "
                    "offer's minimum and maximum."),
    **dict.fromkeys(["800091", "2001"],
                    "The subscription is suspended, so Microsoft does not allow changes to it. Reactivate it first."),
    "900121": "Your credit limit with Microsoft does not cover this purchase. Contact support to raise it.",
    "900270": "The billing frequency cannot be longer than the term. Choose a shorter billing frequency.",
    "800093": "This offer cannot renew automatically. Buy a new subscription before this one ends.",
}

GENERIC = "Something went wrong on our side while making this change. Our support team can see the details; " \
          "try again later."


def failure_reason(error: BaseException) -> str:
    """The customer-facing reason for an operation that gave up because of ``error``.

    A handler's own refusal (``OperationRefused``, or any error marked ``customer_message``) already
    speaks plainly and is kept as it is.
    """
    own = getattr(error, "customer_message", None)
    if own:
        return str(own)
    code = str(getattr(error, "code", "") or "")
    if isinstance(error, ms.MicrosoftError) and code in CODE_MESSAGES:
        return CODE_MESSAGES[code]
    for cls, message in MESSAGES:
        if isinstance(error, cls):
            return message
    return GENERIC


@dataclass(frozen=True)
class Explanation:
    code: str
    message: str
    fix_hint: str


# One user's licence change refused by Graph: what it means, and what to do about it.
ASSIGNMENT_FIXES: list[tuple[type[Exception], Explanation]] = [
    (ms.UsageLocationMissing, Explanation(
        "usage_location_missing", "The user has no usage location.",
        "Set the user's usage location (country) in the Microsoft 365 admin center, sync the directory, "
        "then assign again.")),
    (ms.NotEnoughLicenses, Explanation(
        "no_seats_in_tenant", "Microsoft reports no free seat for this license.",
        "Buy more seats or unassign the license from someone who does not need it.")),
    (ms.SkuNotInTenant, Explanation(
        "sku_not_in_tenant", "This license is not active in the tenant.",
        "Check that the subscription is active (not suspended or expired), then sync the directory.")),
    (ms.NotFound, Explanation(
        "user_not_found", "The user no longer exists in the tenant.",
        "Sync the directory: the user was probably deleted in Microsoft 365.")),
    (ms.Forbidden, Explanation(
        "not_permitted", "The portal is not allowed to change licenses in this tenant.",
        "Check the GDAP relationship holds the License Administrator role and app consent is granted.")),
]


def explain_assignment_error(error: Exception) -> Explanation:
    for cls, explanation in ASSIGNMENT_FIXES:
        if isinstance(error, cls):
            return explanation
    message = getattr(error, "message", "") or str(error)
    return Explanation("rejected", f"Microsoft refused the change: {message}"[:500], "Correct the input and retry.")
