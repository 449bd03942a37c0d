from django.urls import path

from .views import console, downloads, portal, public

app_name = "privacy"

urlpatterns = [
    # Public: no account, no JavaScript needed.
    path("", public.NoticeView.as_view(), name="notice"),
    path("notice/<str:version>/", public.NoticeView.as_view(), name="notice_version"),
    path("choices/", public.ChoicesView.as_view(), name="choices"),
    path("requests/new/", public.PublicRequestView.as_view(), name="request_new"),
    path("requests/verify/<str:token>/", public.PublicVerifyView.as_view(), name="request_verify"),
    # The signed-in person's own requests.
    path("mine/", portal.MyDataView.as_view(), name="my_data"),
    path("mine/new/", portal.MyRequestNewView.as_view(), name="my_request_new"),
    path("mine/<str:reference>/", portal.MyRequestView.as_view(), name="my_request"),
    path("mine/<str:reference>/cancel-deletion/", portal.CancelDeletionView.as_view(), name="my_request_cancel"),
    path("exports/<str:token>/", downloads.ExportDownloadView.as_view(), name="export_download"),
    # The privacy officer's console.
    path("console/", console.QueueView.as_view(), name="console"),
    path("console/new/", console.NewRequestView.as_view(), name="console_new"),
    path("console/requests.csv", console.RequestRecordsCsvView.as_view(), name="console_records_csv"),
    path("console/inventory/", console.InventoryView.as_view(), name="console_inventory"),
    path("console/<uuid:pk>/", console.RequestDeskView.as_view(), name="console_request"),
    path("console/<uuid:pk>/assign/", console.AssignView.as_view(), name="console_assign"),
    path("console/<uuid:pk>/note/", console.NoteView.as_view(), name="console_note"),
    path("console/<uuid:pk>/verify/", console.VerifyView.as_view(), name="console_verify"),
    path("console/<uuid:pk>/authorization/", console.AuthorizationView.as_view(), name="console_authorization"),
    path(
        "console/<uuid:pk>/authorization/<uuid:document_pk>/",
        console.AuthorizationDocumentView.as_view(),
        name="console_authorization_document",
    ),
    path("console/<uuid:pk>/approve/", console.ApproveView.as_view(), name="console_approve"),
    path("console/<uuid:pk>/deny/", console.DenyView.as_view(), name="console_deny"),
    path("console/<uuid:pk>/extend/", console.ExtendView.as_view(), name="console_extend"),
    path("console/<uuid:pk>/complete/", console.CompleteView.as_view(), name="console_complete"),
    path("console/<uuid:pk>/correct/", console.CorrectView.as_view(), name="console_correct"),
    path("console/<uuid:pk>/export/retry/", console.ExportRetryView.as_view(), name="console_export_retry"),
    path(
        "console/<uuid:pk>/conflicts/<uuid:conflict_pk>/resolve/",
        console.ConflictResolveView.as_view(),
        name="console_conflict_resolve",
    ),
    path(
        "console/<uuid:pk>/notices/<uuid:notice_pk>/sent/",
        console.NoticeSentView.as_view(),
        name="console_notice_sent",
    ),
]
