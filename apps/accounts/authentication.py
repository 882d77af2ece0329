from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from . import services
from .models import APIKey


class APIKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>` or `X-Api-Key: <key>`; acts as the key's user."""

    keyword = "Api-Key"

    def authenticate(self, request):
        key = self._key_from(request)
        if key is None:
            return None
        try:
            api_key = APIKey.objects.get_from_key(key)
        except APIKey.DoesNotExist:
            api_key = None
        if api_key is None or not api_key.is_valid(key) or api_key.has_expired or api_key.revoked:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        user = api_key.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("The key's user is inactive.")
        APIKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
        return (user, api_key)

    def _key_from(self, request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.startswith(self.keyword + " "):
            return header[len(self.keyword) + 1 :].strip()
        return request.META.get("HTTP_X_API_KEY") or None

    def authenticate_header(self, request) -> str:
        return self.keyword


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>` with a token from `POST /api/v1/auth/token`: looked up by its
    SHA-256 digest; expired and revoked tokens are refused."""

    def authenticate_credentials(self, key: str):
        token = services.find_token(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        type(token).objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return (token.user, token)
