from django.urls import path

from muestra.web.matching import views

app_name = "matching"

urlpatterns = [
    path("", views.held_list, name="list"),
    path("<int:item_id>/", views.held_detail, name="detail"),
]
