"""Text that leaves diffcheck: one line, free of terminal control codes, in every output.

torch's own error messages and a user's exceptions may carry ANSI colour codes and other control
characters; printed raw they corrupt a terminal, and in junit.xml they make the file invalid XML.
"""

from __future__ import annotations

import re

__all__ = ["plain", "first_line"]

# CSI sequences (colours, cursor moves), OSC sequences (titles, links), then any lone ESC.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]?")
# C0 controls but tab and newline, DEL, C1 controls: none is printable or valid XML 1.0 text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """``text`` without ANSI escape sequences and control characters (tabs and newlines kept)."""
    return _CONTROL.sub("", _ANSI.sub("", str(text)))


def first_line(text: object, limit: int = 200) -> str:
    """The first non-empty line of ``plain(text)``, cut to ``limit`` characters ("" if none)."""
    lines = [line.strip() for line in plain(text).splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""
