from django.http import JsonResponse
from django.urls import path

from . import views

app_name = "portal"


def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", healthz, name="healthz"),
]
