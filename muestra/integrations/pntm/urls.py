"""`<base>/<operationName>`: one route for every operation, matched case-insensitively and with an optional
trailing slash, because LIS configurations in the field were written by hand."""

from django.urls import re_path

from muestra.integrations.pntm import views

app_name = "pntm"

urlpatterns = [
    re_path(r"^(?P<operation>[A-Za-z0-9_]+)/?$", views.endpoint, name="operation"),
]
