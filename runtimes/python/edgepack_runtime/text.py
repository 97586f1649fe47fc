"""Text in and out: the input policy for text and prompts, and what is shown on a terminal.

- `check_text`: a text or prompt must be non-empty, valid UTF-8 (bytes are decoded strictly; a
  str holding lone surrogates, which is what Python makes of invalid UTF-8 on a command line,
  is refused too) and a string, never a number turned into one.
- `printable`: control characters (C0, DEL, C1), bidi overrides and lone surrogates shown
  escaped (`\\x1b`, `\\u202e`), so nothing a package or a file names can move the cursor,
  recolour the terminal, forge an output line or reorder what is shown. The JS and C++
  runtimes escape the same characters.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InputError

_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` as a string that is safe to print on a terminal, escapes shown."""
    return _UNPRINTABLE.sub(_escape, str(text))


def check_text(value: Any, where: str) -> str:
    """`value` as a str if it is a non-empty text of valid UTF-8; InputError naming `where`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{where}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at {exc.start})"
            ) from None
    if not isinstance(value, str):
        raise InputError(f"{where}: expected text, got {type(value).__name__}: pass strings")
    bad = next((i for i, ch in enumerate(value) if "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:  # surrogateescape's stand-in for a byte that is not UTF-8
        raise InputError(f"{where}: not valid UTF-8 (an undecodable byte at character {bad})")
    if not value.strip():
        raise InputError(f"{where}: empty text: give some words")
    return value
