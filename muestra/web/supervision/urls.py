from django.urls import path

from muestra.web.supervision import views

app_name = "supervision"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("intakes/<int:pk>/", views.intake_detail, name="intake"),
    path("items/<int:pk>/", views.item_detail, name="item"),
]
