"""One seeded table and app client that a whole test module can share.

The integration fixtures (`aws`, `api`) give every test a fresh table, which costs ~0.2 s of
seeding per test. A table-driven module with hundreds of cheap cells (the auth matrix) builds its
world once with this instead, and checks that each cell leaves the table as it found it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from moto import mock_aws


@contextlib.contextmanager
def seeded_client() -> Iterator[Any]:
    """What the `aws` + `api` fixtures set up (moto table, demo program), as one context: yields a
    `chalice.test.Client` for the local stage. Needs the session's WeChat stand-in running."""
    from chalice.test import Client

    from app import app
    from chalicelib.seed import seed_demo_program
    from chalicelib.settings import get_settings
    from chalicelib.store import programs, schema
    from devstack import serial_dynamodb

    serial_dynamodb.install()
    try:
        with mock_aws():
            schema.create_table(boto3.client("dynamodb", region_name="us-east-1"), get_settings().table_name)
            programs.clear_cache()
            seed_demo_program()
            with Client(app, stage_name="local") as client:
                yield client
    finally:
        programs.clear_cache()


def add_other_program() -> None:
    """A second program, `other`, with its own staff key and till key (as test_programs does)."""
    from chalicelib.domain.program import demo_program
    from chalicelib.settings import get_settings
    from chalicelib.store import programs

    settings = get_settings()
    config = demo_program().model_copy(update={"program_id": "other", "appid": "wxother000000000000"})
    programs.save_program(settings, config, wechat_secret="dev-wechat-secret")
    programs.save_admin_key("other", "other staff", OTHER_ADMIN_KEY)
    programs.save_till_key(settings, "other", OTHER_TILL_KEY_ID, OTHER_TILL_SECRET)


OTHER_ADMIN_KEY = "other-admin-key"
OTHER_TILL_KEY_ID, OTHER_TILL_SECRET = "other-pos", "other-pos-secret"


def table_items(skip_prefixes: tuple[str, ...] = ()) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item in the table, keyed by (pk, sk). Read from moto's in-process backend: a Scan
    would cost ~0.1 s in moto's response serialisation, too slow to call twice per matrix cell,
    and it would also pass through any fault hooks or meters on PynamoDB's client."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib.settings import get_settings

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(get_settings().table_name)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for item in table.all_items():
        attributes = item.to_json()["Attributes"]
        key = (attributes["pk"]["S"], attributes["sk"]["S"])
        if not key[0].startswith(skip_prefixes):
            found[key] = attributes
    return found
