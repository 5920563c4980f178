from django.urls import path

from muestra.web.mysamples import views

app_name = "mysamples"

urlpatterns = [
    path("", views.sample_list, name="list"),
    path("labels.pdf", views.labels, name="labels"),
    path("<int:number>/", views.detail, name="detail"),
    path("<int:number>/label.pdf", views.label, name="label"),
    path("<int:number>/report.pdf", views.report, name="report"),
    path("<int:number>/edit/", views.edit, name="edit"),
    path("<int:number>/cancel/", views.cancel, name="cancel"),
]
