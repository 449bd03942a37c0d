"""Partner Center REST v1, served under /partnercenter (mirrors api.partnercenter.microsoft.com)."""

from . import billing, catalog_routes, commerce, customers, fraud

ROUTES = (customers.ROUTES + catalog_routes.ROUTES + commerce.ROUTES + billing.ROUTES
          + fraud.ROUTES)
