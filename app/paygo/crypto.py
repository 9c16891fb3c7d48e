"""Encryption of device secret keys at rest, keyed by PAYGO_MASTER_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

from paygo.errors import ConfigurationError


class KeyBox:
    """Encrypts and decrypts 16-byte device keys; never logs or shows them."""

    def __init__(self, master_key: str) -> None:
        digest = hashlib.sha256(b"paygo-device-keys:" + master_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def __repr__(self) -> str:
        return "KeyBox(<master key hidden>)"

    def seal(self, key_hex: str) -> str:
        """Encrypt a device key given as 32 hex characters."""
        return self._fernet.encrypt(bytes.fromhex(key_hex)).decode()

    def open(self, sealed: str) -> str:
        """Decrypt a stored device key back to 32 hex characters."""
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
