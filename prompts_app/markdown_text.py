"""Text for Markdown exports: escaped so that nothing a model or a person wrote turns into markup
(an image that loads from a remote address when the file is viewed, a link, a heading, a table)."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def md_inline(text: object) -> str:
    """Text for one line of Markdown (a heading, list item or paragraph): escaped, line breaks as <br>."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(_MD_SPECIAL.sub(r"\\\1", line.replace("\t", " ")) for line in lines)


def md_cell(text: object) -> str:
    """A table cell: escaped like a line (which escapes `|` too), with no surrounding space."""
    return md_inline(str(text).strip())
