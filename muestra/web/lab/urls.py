from django.urls import path

from muestra.web.lab import views

app_name = "lab"

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("receive/", views.receive, name="receive"),
    path("receive/shipment/", views.receive_start, name="receive_start"),
    path("receive/shipment/scan/", views.receive_scan, name="receive_scan"),
    path("receive/shipment/damage/", views.receive_damage, name="receive_damage"),
    path("receive/shipment/finish/", views.receive_finish, name="receive_finish"),
    path("receive/shipment/cancel/", views.receive_cancel, name="receive_cancel"),
    path("receive/summary/", views.receive_summary, name="receive_summary"),
    path("receive/tube/", views.receive_tube, name="receive_tube"),
    path("samples/<int:number>/", views.sample_detail, name="sample"),
    path("results/", views.results_grid, name="results"),
]
