"""Secrets at rest: a model field that stores Fernet ciphertext.

Keys come from ``settings.SLIPWAY_ENCRYPTION_KEYS``; the first encrypts, all
decrypt (rotation: prepend a new key, re-save, drop the old one). The plain
value only ever exists in memory, on the way to the system that needs it.
"""
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"SLIPWAY_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None


def encrypt(plain: str) -> str:
    return _fernet(tuple(settings.SLIPWAY_ENCRYPTION_KEYS)).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.SLIPWAY_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured("A stored secret cannot be decrypted with SLIPWAY_ENCRYPTION_KEYS.") from None


class EncryptedTextField(models.TextField):
    """Text that is encrypted in the database and plain in Python ("" = unset)."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else ""
