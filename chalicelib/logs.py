"""Structured JSON logs (Powertools Logger). Log ids and outcomes, never tokens, session keys,
phone numbers or request bodies."""

from __future__ import annotations

import functools

from aws_lambda_powertools import Logger

from chalicelib.settings import get_settings


@functools.lru_cache(maxsize=1)
def logger() -> Logger:
    return Logger(service="loyalty", level=get_settings().log_level)
