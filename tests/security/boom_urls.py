"""The portal's URLs plus two views that fail, for the error-handling tests (settings.ROOT_URLCONF)."""

from django.urls import path
from rest_framework.decorators import api_view, authentication_classes, permission_classes

from portal.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401

SECRET_DETAIL = "connection string postgres://portal:hunter2@db/portal"


def boom(request):
    raise RuntimeError(SECRET_DETAIL)


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def api_boom(request):
    raise RuntimeError(SECRET_DETAIL)


urlpatterns = [path("boom/", boom), path("api/v1/boom/", api_boom), *urlpatterns]
