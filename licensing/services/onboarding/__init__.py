"""Bringing a Microsoft tenant under management.

Create a new customer tenant, or link an existing one through a GDAP relationship the
customer approves; accept the Microsoft Customer Agreement; consent the partner app so
Graph calls into the tenant work. Every Microsoft write is an outbox operation.

- create: a new customer tenant (domain check, creation, first admin's credentials);
- link: an existing tenant through GDAP, and the refresh of the relationship's state;
- agreement: the Microsoft Customer Agreement, and whether the organisation may buy;
- consent: the partner app's consent in the customer tenant;
- tenant: the tenant row and the refusal the steps share.

The outbox handlers register when their module is imported, which is why every module is imported here.
"""

from .agreement import AGREEMENT_EXISTS, agreement_accept, agreement_current, require_ready_to_buy  # noqa: F401
from .consent import CONSENT_SCOPES, GRAPH_APP_ID, app_consent_request  # noqa: F401
from .create import (  # noqa: F401
    DOMAIN_PREFIX_RE,
    DOMAIN_SUFFIX,
    DomainCheck,
    credentials_acknowledge,
    normalise_domain_prefix,
    tenant_create,
    tenant_domain_check,
)
from .link import (  # noqa: F401
    GDAP_APPROVAL_URL,
    GDAP_EXPIRING_DAYS,
    GDAP_ROLES,
    GDAP_STATUS_MAP,
    TENANT_STATUS_FOR_GDAP,
    gdap_refresh,
    gdap_status_for,
    tenant_domains_fill,
    tenant_link_request,
)
from .tenant import OnboardingError  # noqa: F401
