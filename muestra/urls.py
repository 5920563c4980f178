from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

# The administration holds every place, user and key: it requires a verified second factor, like the staff pages
# of administrators (enrol or verify at /accounts/, then the admin accepts the session).
admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("", include("muestra.web.urls")),
    # Staff screens, one area per group of users (see muestra/web/navigation.py for who sees which).
    path("register/", include("muestra.web.registration.urls")),
    path("samples/", include("muestra.web.mysamples.urls")),
    path("shipments/", include("muestra.web.shipping.urls")),
    path("lab/", include("muestra.web.lab.urls")),
    path("corrections/", include("muestra.web.corrections.urls")),
    path("territory/", include("muestra.web.territory.urls")),
    path("accounts/", include("muestra.accounts.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("muestra.api.main")),
    path("pntm/", include("muestra.integrations.pntm.urls")),
]

handler403 = "muestra.web.views.error_403"
handler404 = "muestra.web.views.error_404"
handler500 = "muestra.web.views.error_500"
