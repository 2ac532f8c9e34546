"""Programs and their credentials: config, appid map, staff keys, till keys, till nonces.

Config and keys change rarely and are read on every request, so they are cached per Lambda
container for `config_cache_seconds`; writes made through this module drop the cache at once.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib import crypto
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store.tx import ConditionsFailed, Transaction
from chalicelib.store.models import (
    AdminKeyItem,
    AppIdItem,
    NonceItem,
    ProgramItem,
    TableItem,
    TillKeyItem,
)

if TYPE_CHECKING:
    from chalicelib.domain.program import ProgramConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Program:
    config: ProgramConfig
    wechat_secret: str
    version: int
    created_on: str | None = None
    expired_through: str | None = None


@dataclass(frozen=True)
class TillKey:
    key_id: str
    program_id: str
    store_id: str | None
    secret: str


@dataclass(frozen=True)
class AdminKey:
    program_id: str
    name: str
    fingerprint: str


class _Cache:
    """Tiny TTL cache; misses are cached too so that unknown keys don't hit the table each time."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, kind: str, key: str, ttl: float, load: Callable[[], T]) -> T:
        now = time.monotonic()
        hit = self._entries.get((kind, key))
        if hit and hit[0] > now:
            return cast(T, hit[1])
        value = load()
        if ttl > 0:
            self._entries[(kind, key)] = (now + ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


_cache = _Cache()


def cached(kind: str, key: str, ttl: float, load: Callable[[], T]) -> T:
    """The same per-container cache for other credentials (store/staff.py: staff accounts)."""
    return _cache.get(kind, key, ttl, load)


def clear_cache() -> None:
    _cache.clear()


def _get(model: type[TableItem], key: tuple[str, str]) -> Any:
    try:
        return model.get(*key)
    except DoesNotExist:
        return None


def get_program(settings: Settings, program_id: str, fresh: bool = False) -> Program | None:
    """The program (cached per container); `fresh` reads the table (staff editing it)."""

    def load() -> Program | None:
        # The rules' models (lotteries, plans, templates...) are built the first time a program is
        # read, not when the authenticators import this module for till and staff keys.
        from chalicelib.domain.program import ProgramConfig

        item = _get(ProgramItem, keys.program(program_id))
        if item is None:
            return None
        secret = crypto.decrypt(settings, item.wechat_secret_enc, context=item.pk)
        return Program(ProgramConfig.model_validate(item.config), secret, int(item.version), item.created_on,
                       item.expired_through)

    if fresh:
        return load()
    return _cache.get("program", program_id, settings.config_cache_seconds, load)


def program_for_appid(settings: Settings, appid: str) -> str | None:
    def load() -> str | None:
        item = _get(AppIdItem, keys.appid(appid))
        return item.program_id if item else None

    return _cache.get("appid", appid, settings.config_cache_seconds, load)


def program_ids() -> list[str]:
    """Every program (scheduled jobs run for each)."""
    return [item.gsi1sk for item in TableItem.gsi1.query(keys.programs_list())]


def get_admin_key(settings: Settings, presented: str) -> AdminKey | None:
    fingerprint = crypto.key_fingerprint(presented)

    def load() -> AdminKey | None:
        item = _get(AdminKeyItem, keys.admin_key(fingerprint))
        return AdminKey(item.program_id, item.name, fingerprint) if item else None

    return _cache.get("admin", fingerprint, settings.config_cache_seconds, load)


def get_till_key(settings: Settings, key_id: str) -> TillKey | None:
    def load() -> TillKey | None:
        item = _get(TillKeyItem, keys.till_key(key_id))
        if item is None:
            return None
        secret = crypto.decrypt(settings, item.secret_enc, context=item.pk)
        return TillKey(key_id, item.program_id, item.store_id, secret)

    return _cache.get("till", key_id, settings.config_cache_seconds, load)


def _nonce(key_id: str, nonce: str, now: float, window: int) -> tuple[NonceItem, Any]:
    """The nonce's item and its guard: unseen, or seen longer ago than the window (TTL deletion is
    lazy, and never happens in moto)."""
    item = NonceItem(*keys.nonce(key_id, nonce), seen_at=int(now), ttl=dt.timedelta(seconds=window * 2))
    return item, NonceItem.pk.does_not_exist() | (NonceItem.seen_at < int(now) - window)


def put_nonce(tx: Transaction, key_id: str, nonce: str, now: float, window: int) -> None:
    """Spend the nonce inside a transaction (label `nonce` fails if it was seen in the window)."""
    item, condition = _nonce(key_id, nonce, now, window)
    tx.put(item, condition, label="nonce")


def record_nonce(key_id: str, nonce: str, now: float, window: int) -> bool:
    """Spend the nonce on its own: True if it was fresh, False if seen within the window."""
    item, condition = _nonce(key_id, nonce, now, window)
    try:
        item.save(condition=condition)
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def save_program(settings: Settings, config: ProgramConfig, wechat_secret: str | None = None,
                 expected_version: int | None = None) -> Program:
    """Create or replace a program's config (staff or seeding). The appid map is written too.
    With `expected_version`, a concurrent change makes this raise ConditionsFailed."""
    pk, sk = keys.program(config.program_id)
    current = _get(ProgramItem, (pk, sk))
    if expected_version is not None and (current is None or int(current.version) != expected_version):
        raise ConditionsFailed({"program"})
    if wechat_secret is None:
        if current is None:
            raise ValueError("a new program needs its WeChat app secret")
        secret_enc = current.wechat_secret_enc
    else:
        secret_enc = crypto.encrypt(settings, wechat_secret, context=pk)
    version = int(current.version) + 1 if current else 1
    item = ProgramItem(
        pk, sk,
        config=config.model_dump(mode="json"),
        wechat_secret_enc=secret_enc,
        version=version,
        updated_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        created_on=current.created_on if current else dt.datetime.now(dt.timezone.utc).date().isoformat(),
        expired_through=current.expired_through if current else None,
        gsi1pk=keys.programs_list(), gsi1sk=config.program_id,
    )
    condition = ProgramItem.pk.does_not_exist() if current is None else ProgramItem.version == current.version
    try:
        item.save(condition=condition)
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise ConditionsFailed({"program"}) from exc
        raise
    AppIdItem(*keys.appid(config.appid), program_id=config.program_id).save()
    clear_cache()
    return get_program(settings, config.program_id)  # type: ignore[return-value]


def mark_expired_through(program_id: str, day: str) -> None:
    """Move the expiry cursor forward (never back); leaves the config and its version alone."""
    from pynamodb.exceptions import UpdateError

    try:
        ProgramItem(*keys.program(program_id)).update(
            actions=[ProgramItem.expired_through.set(day)],
            condition=ProgramItem.pk.exists() & (ProgramItem.expired_through.does_not_exist()
                                                 | (ProgramItem.expired_through < day)),
        )
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


def save_admin_key(program_id: str, name: str, secret: str) -> None:
    AdminKeyItem(
        *keys.admin_key(crypto.key_fingerprint(secret)),
        program_id=program_id, name=name,
        gsi1pk=keys.admin_keys_list(program_id), gsi1sk=name,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
    ).save()
    clear_cache()


def save_till_key(settings: Settings, program_id: str, key_id: str, secret: str, store_id: str | None = None) -> None:
    pk, sk = keys.till_key(key_id)
    try:
        TillKeyItem(
            pk, sk,
            program_id=program_id, store_id=store_id,
            gsi1pk=keys.till_keys_list(program_id), gsi1sk=key_id,
            secret_enc=crypto.encrypt(settings, secret, context=pk),
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        ).save(condition=TillKeyItem.pk.does_not_exist() | (TillKeyItem.program_id == program_id))
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise ValueError(f"till key {key_id} belongs to another program") from exc
        raise
    clear_cache()
