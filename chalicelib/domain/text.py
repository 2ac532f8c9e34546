"""Free text people type (nicknames, reasons, names): what may not be in it.

Control characters (C0, DEL, C1; U+0000 included) break logs, CSV exports and receipts; the
bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) make text display other than it
is stored (a nickname that reads backwards, a reason that hides its end). Both are refused at the
door, so nothing stored has them. `FreeText` is the one type every free-text input field uses.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_UNSAFE = re.compile("[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]")


def refuse_unsafe(value: str) -> str:
    """The text unchanged, or ValueError naming the first character refused (by code point)."""
    found = _UNSAFE.search(value)
    if found is not None:
        raise ValueError(f"must not contain control characters or bidirectional overrides "
                         f"(U+{ord(found.group()):04X} at {found.start()})")
    return value


FreeText = Annotated[str, AfterValidator(refuse_unsafe)]
