"""Encryption of device secret keys at rest, keyed by PAYGO_MASTER_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cached_property
from typing import TYPE_CHECKING

from paygo.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class KeyBox:
    """Encrypts and decrypts 16-byte device keys; never logs or shows them."""

    def __init__(self, master_key: str) -> None:
        self._digest = hashlib.sha256(b"paygo-device-keys:" + master_key.encode()).digest()

    @cached_property
    def _fernet(self) -> Fernet:
        # Built on first use: a command that never touches a key never loads cryptography.
        from cryptography.fernet import Fernet

        return Fernet(base64.urlsafe_b64encode(self._digest))

    def __repr__(self) -> str:
        return "KeyBox(<master key hidden>)"

    def seal(self, key_hex: str) -> str:
        """Encrypt a device key given as 32 hex characters."""
        return self._fernet.encrypt(bytes.fromhex(key_hex)).decode()

    def open(self, sealed: str) -> str:
        """Decrypt a stored device key back to 32 hex characters."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode()).hex()
        except InvalidToken:
            raise ConfigurationError(
                "a device key cannot be decrypted: PAYGO_MASTER_KEY is not the key it was "
                "stored with",
                setting="PAYGO_MASTER_KEY",
            ) from None


def new_device_key() -> str:
    """Return a fresh random 16-byte device key as hex."""
    return secrets.token_hex(16)


def hash_api_key(raw: str) -> str:
    """Hash an API key for storage (SHA-256: the key itself is 32 random bytes)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
