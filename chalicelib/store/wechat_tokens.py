"""The WeChat access token, shared by every Lambda container through the table.

wechatpy keeps the token in process memory and refetches without a lock; across many concurrent
functions that means a fetch storm, and each fetch invalidates the token the others hold. Here a
conditional put on a lock item lets one caller fetch while the others wait for its result.
"""

from __future__ import annotations

import time
import uuid

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from chalicelib.store import keys
from chalicelib.store.models import TableItem

# Treat a token as gone this long before WeChat does, so no request carries a dying token.
_EARLY_SECONDS = 120
_LOCK_SECONDS = 10


class AccessTokenItem(TableItem, discriminator="wechat_token"):
    token = UnicodeAttribute()
    expires_at = NumberAttribute()


class TokenLockItem(TableItem, discriminator="wechat_token_lock"):
    holder = UnicodeAttribute()
    until = NumberAttribute()


def _token_key(appid: str) -> tuple[str, str]:
    return keys.wechat_access_token(appid)


def _lock_key(appid: str) -> tuple[str, str]:
    return keys.wechat_token_lock(appid)


def read(appid: str, now: float | None = None) -> str | None:
    now = time.time() if now is None else now
    try:
        item = AccessTokenItem.get(*_token_key(appid), consistent_read=True)
    except DoesNotExist:
        return None
    return item.token if item.expires_at - _EARLY_SECONDS > now else None


def write(appid: str, token: str, expires_in: int) -> None:
    AccessTokenItem(*_token_key(appid), token=token, expires_at=int(time.time()) + int(expires_in)).save()


def discard(appid: str, token: str) -> None:
    """Forget a token WeChat rejected, unless somebody already replaced it."""
    try:
        AccessTokenItem(*_token_key(appid)).delete(condition=AccessTokenItem.token == token)
    except DeleteError:
        pass


def try_lock(appid: str) -> str | None:
    holder = uuid.uuid4().hex
    now = time.time()
    try:
        TokenLockItem(*_lock_key(appid), holder=holder, until=int(now) + _LOCK_SECONDS).save(
            condition=TokenLockItem.pk.does_not_exist() | (TokenLockItem.until < int(now))
        )
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    return holder


def unlock(appid: str, holder: str) -> None:
    try:
        TokenLockItem(*_lock_key(appid)).delete(condition=TokenLockItem.holder == holder)
    except DeleteError:
        pass
