from django.conf import settings


def portal(request):
    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        # The visitor's opt-out of sale and sharing (privacy middleware): shown as "Opt-Out Request Honored".
        "privacy_opt_out": getattr(request, "privacy_opt_out", None),
        "debug": settings.DEBUG,
    }
