from django.urls import path

from muestra.web.registration import views

app_name = "registration"

urlpatterns = [
    path("", views.new, name="new"),
    path("check/", views.check, name="check"),
    path("patient/", views.patient, name="patient"),
    path("refresh/", views.refresh, name="refresh"),
]
