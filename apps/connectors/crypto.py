"""Encryption at rest for credential secrets (Fernet: AES-128-CBC + HMAC-SHA256).

Keys come from settings.CREDENTIALS_KEY: one or more urlsafe-base64 Fernet keys,
comma-separated, the first used to encrypt and all tried to decrypt (so keys can be
rotated: add the new key first, run `rotate_credentials`, then drop the old one).
Without it a key is derived from SECRET_KEY with HKDF, so a development install
works out of the box; changing SECRET_KEY then makes stored secrets unreadable.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted with the configured keys."""


def derive_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"workflow-builder", info=b"credentials-v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@lru_cache(maxsize=8)
def _fernet(configured: str, secret_key: str) -> MultiFernet:
    keys = [k.strip() for k in configured.split(",") if k.strip()] if configured else []
    if not keys:
        return MultiFernet([Fernet(derive_key(secret_key))])
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated"
        ) from None


def fernet() -> MultiFernet:
    return _fernet(getattr(settings, "CREDENTIALS_KEY", "") or "", settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the stored secret cannot be decrypted with the configured CREDENTIALS_KEY") from None


def rotate(token: str) -> str:
    """Re-encrypt `token` with the primary key."""
    return fernet().rotate(token.encode()).decode()
