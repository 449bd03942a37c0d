from django.urls import path

from .views import public

app_name = "well_known"

urlpatterns = [
    path("gpc.json", public.gpc_json, name="gpc"),
]
