from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("muestra.web.urls")),
    path("accounts/", include("muestra.accounts.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("muestra.api.main")),
    path("pntm/", include("muestra.integrations.pntm.urls")),
]

handler403 = "muestra.web.views.error_403"
handler404 = "muestra.web.views.error_404"
handler500 = "muestra.web.views.error_500"
