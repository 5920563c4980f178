from django.contrib import admin
from django.urls import include, path

from muestra.accounts.admin import MuestraAdminSite
from muestra.accounts.views import set_language_view

# The administration holds every place, user and key: it requires a verified second factor, like the staff pages
# of administrators (enrol or verify at /accounts/, then the admin accepts the session), and is open to national
# administrators only (django-otp's OTPAdminSite, narrowed in accounts/admin.py).
admin.site.__class__ = MuestraAdminSite

urlpatterns = [
    # The interfaces of other systems first: they take requests by the thousand, and Django tries these patterns
    # in order (after the staff screens, a registration walked some fifteen of them before reaching the API).
    path("api/v1/", include("muestra.api.main")),
    path("pntm/", include("muestra.integrations.pntm.urls")),
    path("fhir/", include("muestra.integrations.fhir.urls")),
    path("", include("muestra.web.urls")),
    # Staff screens, one area per group of users (see muestra/web/navigation.py for who sees which).
    path("register/", include("muestra.web.registration.urls")),
    path("samples/", include("muestra.web.mysamples.urls")),
    path("shipments/", include("muestra.web.shipping.urls")),
    path("lab/", include("muestra.web.lab.urls")),
    path("corrections/", include("muestra.web.corrections.urls")),
    path("territory/", include("muestra.web.territory.urls")),
    path("uploads/", include("muestra.web.uploads.urls")),
    path("matching/", include("muestra.web.matching.urls")),
    path("supervision/", include("muestra.web.supervision.urls")),
    path("accounts/", include("muestra.accounts.urls")),
    path("admin/", admin.site.urls),
    # Django's language switcher, which also remembers the choice on the signed-in user's account.
    path("i18n/setlang/", set_language_view, name="set_language"),
]

handler403 = "muestra.web.views.error_403"
handler404 = "muestra.web.views.error_404"
handler500 = "muestra.web.views.error_500"
