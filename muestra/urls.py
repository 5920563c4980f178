from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

# The administration holds every place, user and key: it requires a verified second factor, like the staff pages
# of administrators (enrol or verify at /accounts/, then the admin accepts the session).
admin.site.__class__ = OTPAdminSite

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
