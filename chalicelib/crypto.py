"""Secrets at rest: AES-256-GCM for phones, session keys and till secrets; a keyed hash for
lookups (so a phone can be found without being stored in clear); masking for answers.

Keys rotate through key rings. A ring is ``id:key,id:key,...``: the first key is current (new
ciphertexts and tokens use it), the others are still read. A plain value is a ring of one key
with id ``k0``. A ciphertext is ``<key id>:<base64(nonce + sealed)>``; one without a prefix (written
before key ids existed, e.g. an old local seed) was made with ``k0``. Rotating the data key: put the
new key first and keep the old ones while any data made with them remains (infra/README.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.settings import Settings

_NONCE_BYTES = 12
LEGACY_KEY_ID = "k0"
_RING_ENTRY = re.compile(r"^(?P<id>[A-Za-z0-9_-]{1,32}):(?P<key>.+)$")


@dataclass(frozen=True)
class KeyRing:
    current: str
    keys: dict[str, str]

    def key(self, key_id: str) -> str:
        try:
            return self.keys[key_id]
        except KeyError:
            raise ValueError(f"no key {key_id!r} in the key ring") from None


@functools.lru_cache(maxsize=8)
def key_ring(value: str) -> KeyRing:
    entries = [_RING_ENTRY.match(part) for part in value.split(",")]
    if not all(entries):
        return KeyRing(LEGACY_KEY_ID, {LEGACY_KEY_ID: value})
    keys = {m["id"]: m["key"] for m in entries if m}
    if len(keys) != len(entries):
        raise ValueError("a key ring names a key id twice")
    return KeyRing(entries[0]["id"], keys)  # type: ignore[index]


@functools.lru_cache(maxsize=8)
def _cipher(data_key: str) -> AESGCM:
    key = base64.b64decode(data_key)
    if len(key) != 32:
        raise ValueError("the data key must be 32 bytes, base64-encoded")
    return AESGCM(key)


def encrypt(settings: Settings, plaintext: str, *, context: str) -> str:
    """Encrypt with the current data key; `context` (e.g. the item's key) is bound as associated
    data, so a ciphertext copied onto another item does not decrypt."""
    ring = key_ring(settings.secret("data_key"))
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(ring.key(ring.current)).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{ring.current}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(settings: Settings, token: str, *, context: str) -> str:
    key_id, _, body = token.rpartition(":")
    ring = key_ring(settings.secret("data_key"))
    raw = base64.b64decode(body)
    return (
        _cipher(ring.key(key_id or LEGACY_KEY_ID))
        .decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        .decode()
    )


def ciphertext_key_id(token: str) -> str:
    """Which data key made a ciphertext (a re-encryption sweep looks for old ids)."""
    return token.rpartition(":")[0] or LEGACY_KEY_ID


def lookup_hash(settings: Settings, value: str) -> str:
    # Not a ring: the hash is a lookup key, so it cannot change without rewriting every guard.
    return hmac.new(settings.secret("lookup_key").encode(), value.encode(), hashlib.sha256).hexdigest()


def key_fingerprint(secret: str) -> str:
    """Admin keys are high-entropy random strings, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mask_phone(phone: str) -> str:
    """13800000000 -> 138****0000; other lengths keep the first 3 and last 4 as well."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"
