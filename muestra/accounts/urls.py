from django.contrib.auth import views as auth_views
from django.urls import path

from muestra.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("two-factor/", views.totp_verify_view, name="totp_verify"),
    path("two-factor/enrol/", views.totp_enrol_view, name="totp_enrol"),
    path("two-factor/replace/", views.totp_replace_view, name="totp_replace"),
    path("two-factor/replace/new/", views.totp_replace_enrol_view, name="totp_replace_enrol"),
    path("", views.account_view, name="account"),
    path("password/", views.password_change_view, name="password_change"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html"),
        name="password_reset_complete",
    ),
]
