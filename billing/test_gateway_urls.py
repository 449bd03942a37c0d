from django.urls import path

from . import test_gateway_views

app_name = "test_gateway"

urlpatterns = [path("hosted-fields/", test_gateway_views.HostedFields.as_view(), name="hosted_fields")]
