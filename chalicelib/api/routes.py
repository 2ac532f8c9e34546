"""Registers every blueprint and the HTTP middleware on the app."""

from __future__ import annotations

from chalice import Chalice

from chalicelib.api import admin, docs, health, holds, http, members, points, rewards, webhooks


def register(app: Chalice) -> None:
    http.register_middleware(app)
    for module in (health, docs, members, points, rewards, holds, admin, webhooks):
        app.register_blueprint(module.bp)
