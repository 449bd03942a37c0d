from django.urls import path

from . import views

app_name = "security"

urlpatterns = [
    path("activity/", views.ActivityLogView.as_view(), name="activity"),
    path("activity/export.csv", views.ActivityExportView.as_view(), name="activity_export"),
    path("sign-in-networks/", views.SignInNetworksView.as_view(), name="sign_in_networks"),
    path("fraud-cases/", views.FraudCasesView.as_view(), name="fraud_cases"),
    path("fraud-cases/<uuid:case_id>/", views.FraudCaseView.as_view(), name="fraud_case"),
]
