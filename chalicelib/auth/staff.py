"""Merchant staff: `Authorization: Bearer <admin key>`; keys are stored as SHA-256 fingerprints."""

from __future__ import annotations

from chalicelib.auth.permissions import ALL
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.errors import Unauthorized
from chalicelib.settings import Settings
from chalicelib.store import programs

DEV_ADMIN_KEY = "dev-admin-key"


def verify(settings: Settings, bearer: str) -> StaffPrincipal:
    if bearer == DEV_ADMIN_KEY and not settings.is_local:
        raise Unauthorized("dev keys are refused outside the local stage")
    key = programs.get_admin_key(settings, bearer)
    if key is None:
        raise Unauthorized("unknown admin key")
    # An admin key is machine access for the whole program: every permission.
    return StaffPrincipal(key.program_id, key.name, key.fingerprint[:12], ALL)
