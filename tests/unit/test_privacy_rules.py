"""The members'-rights table's own rules (which kinds export and erasure touch, what an export hides)."""

from __future__ import annotations

from chalicelib.domain import privacy


def test_personal_and_owned_kinds_are_exported_and_deleted_financial_ones_exported_and_kept():
    assert privacy.KINDS["profile"].exported and privacy.KINDS["profile"].deleted
    assert privacy.KINDS["coupon"].exported and privacy.KINDS["coupon"].deleted
    assert privacy.KINDS["order"].exported and not privacy.KINDS["order"].deleted
    assert privacy.KINDS["pay_order"].strip == ("openid",)
    for kind in ("webhook_event", "sighting", "idempotency", "erasure", "privacy_log"):
        assert not privacy.KINDS[kind].exported and not privacy.KINDS[kind].deleted, kind


def test_an_export_never_shows_secrets_keyed_hashes_or_index_keys():
    shown = privacy.export_view("profile", {"pk": "P", "sk": "A#PROFILE", "nickname": "n", "phone_enc": "k0:x",
                                            "phone_hash": "h", "gsi1pk": "g", "phone_masked": "138****0000"})
    assert shown == {"pk": "P", "sk": "A#PROFILE", "nickname": "n", "phone_masked": "138****0000"}
    assert "session_key_enc" not in privacy.export_view("wechat_user", {"openid": "o", "session_key_enc": "s"})
    assert "response" not in privacy.export_view("hold", {"hold_id": "h", "response": {}, "request_hash": "x"})
