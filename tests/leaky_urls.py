"""Deliberately leaky routes, used only to prove the cross-tenant sweep catches leaks."""

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views import View
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.org_views import OrganizationMixin


class LeakyDetail(OrganizationMixin, View):
    def get(self, request, org_slug, pk):
        key = ApiKey.unscoped_objects.get(pk=pk)  # the bug under test: no organisation filter
        return HttpResponse(key.name)


class LeakyList(OrganizationMixin, View):
    def get(self, request, org_slug):
        return JsonResponse({"ids": [str(pk) for pk in ApiKey.unscoped_objects.values_list("pk", flat=True)]})


class HidingList(OrganizationMixin, View):
    """Answers, but shows none of the caller's own rows (a manager or filter that returns nothing)."""

    def get(self, request, org_slug):
        return JsonResponse({"ids": []})


class RefusingList(OrganizationMixin, View):
    """Hides the other organisation by refusing its own: a 404 for everyone is no isolation."""

    def get(self, request, org_slug):
        return HttpResponse(status=404)


class LeakyApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ids": [str(pk) for pk in ApiKey.unscoped_objects.values_list("pk", flat=True)]})


urlpatterns = [
    path("o/<slug:org_slug>/leak/<uuid:pk>/", LeakyDetail.as_view()),
    path("o/<slug:org_slug>/leak-list/", LeakyList.as_view()),
    path("o/<slug:org_slug>/hiding-list/", HidingList.as_view()),
    path("o/<slug:org_slug>/refusing-list/", RefusingList.as_view()),
    path("api/v1/leak/", LeakyApi.as_view()),
]
