"""Whole numbers read from URLs, forms and Maxim's answers.

`str.isdigit()` is true for "²" and "٣", which `int()` then refuses (or, for a long run of
digits, turns into a number no database column holds): every such read goes through here.
"""

from __future__ import annotations


def plain_int(text: object, *, max_digits: int = 18) -> int | None:
    """`text` as an int if it is 1 to `max_digits` ASCII digits, else None."""
    if not isinstance(text, str) or not 0 < len(text) <= max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
