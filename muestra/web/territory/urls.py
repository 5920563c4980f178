from django.urls import path

from muestra.web.territory import views

app_name = "territory"

urlpatterns = [
    path("", views.sample_list, name="list"),
    path("export.<str:fmt>", views.sample_export, name="export"),
]
