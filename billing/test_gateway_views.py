"""The local test gateway's hosted card fields: the page a real processor serves from its own domain.

Mounted at /test-gateway/ only when ``settings.BILLING_TEST_GATEWAY_ENABLED`` (development and tests).
The card number and CVC are read here, turned into a signed token and dropped: they are not stored,
not logged (``sensitive_post_parameters`` keeps them out of error reports), and the browser is sent
back to the portal with the token only. In production the processor's page does this on its domain,
and the portal never receives the digits at all.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from .gateway import GatewayError, TestGateway


def _return_url(request) -> str | None:
    url = request.POST.get("return_url") or request.GET.get("return_url") or ""
    if not url.startswith("/o/") or not url_has_allowed_host_and_scheme(url, allowed_hosts=None):
        return None
    return url


@method_decorator(sensitive_post_parameters("number", "cvc", "expiry"), name="dispatch")
class HostedFields(View):
    template_name = "billing/test_gateway/hosted_fields.html"

    def get(self, request):
        if _return_url(request) is None:
            return HttpResponseBadRequest("A return address on the portal is required.")
        return render(request, self.template_name, {"return_url": _return_url(request),
                                                    "state": request.GET.get("state", "")})

    def post(self, request):
        return_url, state = _return_url(request), request.POST.get("state", "")
        if return_url is None:
            return HttpResponseBadRequest("A return address on the portal is required.")
        expiry = request.POST.get("expiry", "").replace(" ", "")
        try:
            month, year = (int(part) for part in expiry.split("/"))
            token = TestGateway().tokenize(number=request.POST.get("number", ""), exp_month=month,
                                           exp_year=2000 + year if year < 100 else year,
                                           cvc=request.POST.get("cvc", "").strip())
        except ValueError:
            error = "Give the expiry as MM/YY."
        except GatewayError as exc:
            error = str(exc)
        else:
            return redirect(f"{return_url}?{urlencode({'token': token, 'state': state})}")
        return render(request, self.template_name, {"return_url": return_url, "state": state, "error": error},
                      status=400)
