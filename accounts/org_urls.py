from django.urls import path

from . import team_views

app_name = "team"

urlpatterns = [
    path("", team_views.MembersView.as_view(), name="members"),
    path("members/<uuid:membership_id>/role/", team_views.MemberRoleView.as_view(), name="member_role"),
    path("members/<uuid:membership_id>/remove/", team_views.MemberRemoveView.as_view(), name="member_remove"),
    path("leave/", team_views.LeaveView.as_view(), name="leave"),
    path("invitations/new/", team_views.InvitationCreateView.as_view(), name="invitation_create"),
    path(
        "invitations/<uuid:invitation_id>/resend/",
        team_views.InvitationResendView.as_view(),
        name="invitation_resend",
    ),
    path(
        "invitations/<uuid:invitation_id>/revoke/",
        team_views.InvitationRevokeView.as_view(),
        name="invitation_revoke",
    ),
    path("api-keys/", team_views.ApiKeyListView.as_view(), name="api_keys"),
    path("api-keys/new/", team_views.ApiKeyCreateView.as_view(), name="api_key_create"),
    path("api-keys/<uuid:api_key_id>/revoke/", team_views.ApiKeyRevokeView.as_view(), name="api_key_revoke"),
    path("settings/", team_views.OrganizationSettingsView.as_view(), name="settings"),
]
