from django.urls import path

from muestra.web.shipping import views

app_name = "shipping"

urlpatterns = [
    path("", views.shipment_list, name="list"),
    path("new/", views.shipment_new, name="new"),
    path("<int:number>/", views.shipment_detail, name="detail"),
    path("<int:number>/scan/", views.shipment_scan, name="scan"),
    path("<int:number>/remove/", views.shipment_remove, name="remove"),
    path("<int:number>/dispatch/", views.shipment_dispatch, name="dispatch"),
    path("<int:number>/manifest.pdf", views.manifest, name="manifest"),
]
