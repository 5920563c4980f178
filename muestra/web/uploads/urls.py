from django.urls import path

from muestra.web.uploads import views

app_name = "uploads"

urlpatterns = [
    path("", views.upload_list, name="list"),
    path("<int:pk>/", views.upload_detail, name="detail"),
    path("<int:pk>/report.<str:fmt>", views.upload_report, name="report"),
    path("templates/<str:kind>.<str:fmt>", views.template_download, name="template"),
]
