"""Login by username or by national ID (RUN/CCCD), with the ordinary password check."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db.models import Q
from django.http import HttpRequest

from muestra.accounts.models import User


def _normalise_national_id(value: str) -> str:
    return value.replace(".", "").replace(" ", "").upper()


class UsernameOrNationalIdBackend(ModelBackend):
    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if not username or not password:
            return None
        candidates = list(
            User.objects.filter(Q(username__iexact=username) | Q(national_id=_normalise_national_id(username)))[:2]
        )
        if len(candidates) != 1:
            # Run the hasher anyway so timing does not reveal whether the account exists.
            User().set_password(password)
            return None
        user = candidates[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
