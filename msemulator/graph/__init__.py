"""Microsoft Graph v1.0, served under /graph/v1.0 (mirrors graph.microsoft.com/v1.0)."""

from . import batch, billing_export, licenses, users

ROUTES = licenses.ROUTES + users.ROUTES + batch.ROUTES + billing_export.ROUTES
