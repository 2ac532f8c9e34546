"""Secrets at rest: AES-256-GCM for phones, session keys and till secrets; a keyed hash for
lookups (so a phone can be found without being stored in clear); masking for answers."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.settings import Settings

_NONCE_BYTES = 12


@functools.lru_cache(maxsize=4)
def _cipher(data_key: str) -> AESGCM:
    key = base64.b64decode(data_key)
    if len(key) != 32:
        raise ValueError("the data key must be 32 bytes, base64-encoded")
    return AESGCM(key)


def encrypt(settings: Settings, plaintext: str, *, context: str) -> str:
    """Encrypt; `context` (e.g. the item's key) is bound as associated data, so a ciphertext
    copied onto another item does not decrypt."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(settings.data_key.get_secret_value()).encrypt(
        nonce, plaintext.encode(), context.encode()
    )
    return base64.b64encode(nonce + sealed).decode()


def decrypt(settings: Settings, token: str, *, context: str) -> str:
    raw = base64.b64decode(token)
    return (
        _cipher(settings.data_key.get_secret_value())
        .decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        .decode()
    )


def lookup_hash(settings: Settings, value: str) -> str:
    return hmac.new(settings.lookup_key.get_secret_value().encode(), value.encode(), hashlib.sha256).hexdigest()


def key_fingerprint(secret: str) -> str:
    """Admin keys are high-entropy random strings, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mask_phone(phone: str) -> str:
    """13800000000 -> 138****0000; other lengths keep the first 3 and last 4 as well."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"
