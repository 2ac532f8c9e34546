"""Free text at the door: control characters and bidirectional overrides are refused."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from chalicelib.domain.text import FreeText


class Body(BaseModel):
    nickname: FreeText | None = None


@pytest.mark.parametrize("bad", ["a\x00b", "\x07", "x\x1b[31m", "\x7f", "\x85", "\x9f", "evil\u202egnp.exe",
                                 "\u202a", "\u202d", "\u2066x", "\u2067", "\u2068", "\u2069", "line\nbreak"])
def test_unsafe_characters_are_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as refused:
        Body(nickname=bad)
    assert refused.value.errors()[0]["loc"] == ("nickname",)
    assert "U+" in str(refused.value)


@pytest.mark.parametrize("good", ["小明", "Zoë", "O'Brien 🙂", "a b", "\u200d👨‍👩‍👧", "\u05e9\u05dc\u05d5\u05dd"])
def test_ordinary_text_in_any_script_passes_unchanged(good):
    assert Body(nickname=good).nickname == good
