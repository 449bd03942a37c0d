from django.conf import settings


def portal(request):
    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        "gpc_honored": getattr(request, "gpc", False),
        "debug": settings.DEBUG,
    }
