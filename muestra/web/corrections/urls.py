from django.urls import path

from muestra.web.corrections import views

app_name = "corrections"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("<int:pk>/", views.decide, name="decide"),
]
