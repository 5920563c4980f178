"""/fhir/: base (POST a Bundle), metadata, `<Type>/<id>` read and `<Type>?...` search; anything else is a 404
OperationOutcome."""

from django.urls import path, re_path

from muestra.integrations.fhir import views

app_name = "fhir"

urlpatterns = [
    path("", views.base, name="base"),
    path("metadata", views.metadata, name="metadata"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)/?$", views.search, name="search"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<ident>[A-Za-z0-9\-.]{1,64})/?$", views.read, name="read"),
    re_path(r"^.*$", views.unknown),
]
