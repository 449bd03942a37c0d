from django.urls import path

from . import reseller_access_views, team_views

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
    path("reseller-access/", reseller_access_views.ResellerAccessView.as_view(), name="reseller_access"),
    path("reseller-access/policy/", reseller_access_views.ResellerAccessPolicyView.as_view(),
         name="reseller_access_policy"),
    path("reseller-access/<uuid:grant_id>/approve/", reseller_access_views.GrantApproveView.as_view(),
         name="reseller_access_approve"),
    path("reseller-access/<uuid:grant_id>/deny/", reseller_access_views.GrantDenyView.as_view(),
         name="reseller_access_deny"),
    path("reseller-access/<uuid:grant_id>/revoke/", reseller_access_views.GrantRevokeView.as_view(),
         name="reseller_access_revoke"),
]
