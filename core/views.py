"""The site-wide error pages: HTML for people, the one JSON error shape for API clients."""

import sys

import redis
from django.db import InterfaceError, OperationalError
from django.shortcuts import render

from .api.errors import error_response


def csrf_failure(request, reason=""):
    if request.path.startswith("/api/"):
        return error_response(403, "csrf_failed", "CSRF verification failed. Reload the page and try again.")
    return render(request, "errors/403_csrf.html", {"reason": reason}, status=403)


def bad_request(request, exception=None):
    return _error(request, 400, "bad_request", "The request could not be understood.")


def permission_denied(request, exception=None):
    return _error(request, 403, "permission_denied", "You do not have permission to do this.")


def page_not_found(request, exception=None):
    return _error(request, 404, "not_found", "The page or object was not found.")


def server_error(request):
    # Called inside Django's exception handling, so the exception is still at hand. A database (or the
    # Redis cache and broker) restarting or unreachable is a 503 with Retry-After: the request's transaction rolled back
    # with the connection, nothing was half-written, and the client may send it again.
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError | redis.ConnectionError | redis.TimeoutError):
        response = _error(request, 503, "service_unavailable",
                          "The service is briefly unavailable. Nothing was changed; try again in a few seconds.")
        response["Retry-After"] = "5"
        return response
    return _error(request, 500, "server_error", "Something went wrong on our side. We have logged it.")


def _error(request, status, code, message):
    if request.path.startswith("/api/"):
        return error_response(status, code, message)
    return render(request, "errors/error.html", {"status": status, "message": message}, status=status)
