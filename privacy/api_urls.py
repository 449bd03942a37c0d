"""API routes of the privacy app, included under /api/v1/ in the "api" namespace."""

from django.urls import path

from . import api

urlpatterns = [
    path("privacy/opt-out/", api.OptOutView.as_view(), name="privacy-opt-out"),
]
