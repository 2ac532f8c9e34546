"""Registers every blueprint and the HTTP middleware on the app."""

from __future__ import annotations

from chalice import Chalice

from chalicelib.api import admin, coupons, docs, health, holds, http, members, money, points, rewards, risk, webhooks
from chalicelib.api import membership, privacy
from chalicelib.api import console, staff  # issue 16


def register(app: Chalice) -> None:
    http.register_middleware(app)
    for module in (health, docs, members, points, rewards, holds, coupons, money, admin, risk, webhooks, privacy,
                   membership):
        app.register_blueprint(module.bp)
    for module in (staff, console):  # issue 16
        app.register_blueprint(module.bp)
    # insight (issue 15)
    from chalicelib.api import reports

    app.register_blueprint(reports.bp)
