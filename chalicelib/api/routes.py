"""Registers every blueprint on the app."""

from __future__ import annotations

from chalice import Chalice


def register(app: Chalice) -> None:
    from chalicelib.api import health

    app.register_blueprint(health.bp)
