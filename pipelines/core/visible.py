"""Text from outside shown safely: a file name, a Lens value or a zip entry may hold control
characters, bidirectional overrides or bytes that are no text. Shown raw, they move a
terminal's cursor, end an e-mail header and start another, or reverse a report's line
(U+202E). Shown here, each is its escape (`\\x1b`, `\\u202e`), so the name stays recognisable."""
from __future__ import annotations

import os
import re

# C0 and C1 controls, DEL, the bidirectional marks and overrides, and lone surrogates (the
# bytes of a file name that were not UTF-8, as Python reads them).
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: str, keep: str = "") -> str:
    """`text` with every hidden character but those in `keep` written as its escape."""
    return HIDDEN.sub(lambda found: found[0] if found[0] in keep else _escape(found[0]), text)


def _escape(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8: the byte itself
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def text_name(name: str) -> str:
    """A file name as UTF-8 text: a name in another encoding (Latin-1 from a Windows share,
    CP437 from a zip) has each byte that is not UTF-8 written as `\\xNN`."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
