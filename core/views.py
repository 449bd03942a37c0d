"""The site-wide error pages: HTML for people, the one JSON error shape for API clients."""

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
    return _error(request, 500, "server_error", "Something went wrong on our side. We have logged it.")


def _error(request, status, code, message):
    if request.path.startswith("/api/"):
        return error_response(status, code, message)
    return render(request, "errors/error.html", {"status": status, "message": message}, status=status)
