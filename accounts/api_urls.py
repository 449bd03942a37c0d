from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("members", api.MemberViewSet, basename="member")
router.register("invitations", api.InvitationViewSet, basename="invitation")
router.register("api-keys", api.ApiKeyViewSet, basename="api-key")
router.register("audit-events", api.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("organization/", api.OrganizationView.as_view(), name="organization"),
    *router.urls,
]
