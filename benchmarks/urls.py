"""The portal's URLs plus a bare Django view: the baseline for page throughput."""

from django.http import HttpResponse
from django.urls import path

from benchmarks.staff_admin_site import site as ungranted_admin_site
from portal.urls import handler400, handler403, handler404, handler500  # noqa: F401
from portal.urls import urlpatterns as portal_urlpatterns


def bare(request):
    return HttpResponse("<!doctype html><title>bare</title><p>ok</p>")


urlpatterns = [
    path("bench/bare/", bare, name="bench-bare"),
    path("bench/admin/", ungranted_admin_site.urls),  # bench_staff_admin's baseline
    *portal_urlpatterns,
]
