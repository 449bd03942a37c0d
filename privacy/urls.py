from django.urls import path

from .views import public

app_name = "privacy"

urlpatterns = [
    path("", public.NoticeView.as_view(), name="notice"),
    path("notice/<str:version>/", public.NoticeView.as_view(), name="notice_version"),
    path("choices/", public.ChoicesView.as_view(), name="choices"),
]
