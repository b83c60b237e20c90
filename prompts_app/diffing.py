"""Side-by-side differences between two versions: messages by position, tools by name,
parameters by key, with changed words marked `<del>`/`<ins>` (escaped first)."""

from __future__ import annotations

import bisect
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from prompts_app import pricing

if TYPE_CHECKING:  # a type only: diffing works on any version content and knows no ORM
    from prompts_app.models import VersionContent

_TOKENS = re.compile(r"\s+|[^\s]+")
_LINES = re.compile(r"[^\n]*\n|[^\n]+")
# Past this many characters (about 10,000 words a side), diff whole lines: still exact,
# and a pair of huge outputs cannot keep a request busy (nor splitting them into words).
MAX_WORD_DIFF_CHARS = 150_000
MAX_DIFFED_CHARS = 300_000  # of each side; beyond it only the start is diffed (~0.25 s CPU at most)
# Diffs of texts this long are cached: a comparison page shows the same finished outputs on every poll.
CACHE_FROM_CHARS = 2_000
CACHE_SECONDS = 24 * 3600


def word_diff(old: str, new: str) -> SafeString:
    """One HTML string with removed words in <del> and added words in <ins>.

    A run of changes joined only by spaces reads as one change ("<del>a b</del><ins>c d</ins>"),
    not as words interleaved with their replacements.
    """
    old, new = old or "", new or ""
    if len(old) > MAX_DIFFED_CHARS or len(new) > MAX_DIFFED_CHARS:
        # Megabytes of output would hold a thread for seconds per request (anyone who can read them
        # can ask): the start is compared, and the page says so.
        note = f"\n… only the first {MAX_DIFFED_CHARS:,} characters of each are compared here."
        html = word_diff(old[:MAX_DIFFED_CHARS], new[:MAX_DIFFED_CHARS])
        return mark_safe(f'{html}<span class="diff-cut">{escape(note)}</span>')  # noqa: S308 - escaped
    if len(old) + len(new) < CACHE_FROM_CHARS:
        return mark_safe(_diff_html(old, new))  # noqa: S308 - _diff_html escapes every piece
    digest = hashlib.sha256(f"{len(old)}:{old}{new}".encode()).hexdigest()
    key = f"word-diff:v1:{digest}"
    html = cache.get(key)
    if html is None:
        html = _diff_html(old, new)
        cache.set(key, html, CACHE_SECONDS)
    return mark_safe(html)  # noqa: S308 - made by _diff_html, which escapes every piece


def _diff_html(old: str, new: str) -> str:
    pattern = _TOKENS if len(old) + len(new) <= MAX_WORD_DIFF_CHARS else _LINES
    a, b = pattern.findall(old), pattern.findall(new)
    opcodes = _opcodes(a, b)
    out: list[str] = []
    removed: list[str] = []
    added: list[str] = []

    def flush() -> None:
        if removed:
            out.append(f"<del>{escape(''.join(removed))}</del>")
        if added:
            out.append(f"<ins>{escape(''.join(added))}</ins>")
        removed.clear()
        added.clear()

    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        same = "".join(a[i1:i2])
        between_changes = 0 < index < len(opcodes) - 1 and (removed or added)
        if op == "equal" and not (between_changes and same.isspace()):
            flush()
            out.append(escape(same))
            continue
        removed.extend(a[i1:i2])
        added.extend(b[j1:j2])
    flush()
    return "".join(out)


def _opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """SequenceMatcher-style opcodes over word and space tokens, from a diff of the words alone.

    Diffing the tokens directly is roughly cubic (every space matches every space: 2,000
    words took 18 s); see matched_words for the words. The space just before or after a
    matched word matches too when it is the same.
    """
    pa = [k for k, token in enumerate(a) if not token.isspace()]
    pb = [k for k, token in enumerate(b) if not token.isspace()]
    pairs: list[tuple[int, int]] = []

    def pair(i: int, j: int) -> None:
        if (not pairs or (pairs[-1][0] < i and pairs[-1][1] < j)) and i < len(a) and j < len(b) and a[i] == b[j]:
            pairs.append((i, j))

    for i, j in matched_words([a[k] for k in pa], [b[k] for k in pb]):
        ta, tb = pa[i], pb[j]
        if ta and tb:
            pair(ta - 1, tb - 1)
        pair(ta, tb)
        pair(ta + 1, tb + 1)
    opcodes = []
    i = j = 0
    for ta, tb in [*pairs, (len(a), len(b))]:
        tag = "replace" if i < ta and j < tb else "delete" if i < ta else "insert" if j < tb else ""
        if tag:
            opcodes.append((tag, i, ta, j, tb))
        if ta < len(a) or tb < len(b):
            if opcodes and opcodes[-1][0] == "equal" and opcodes[-1][2] == ta:
                opcodes[-1] = ("equal", opcodes[-1][1], ta + 1, opcodes[-1][3], tb + 1)
            else:
                opcodes.append(("equal", ta, ta + 1, tb, tb + 1))
        i, j = ta + 1, tb + 1
    return opcodes


# Past this many cells, a stretch with no word unique to both sides is shown as replaced
# rather than searched (a text of one word repeated thousands of times).
MAX_SEARCH_CELLS = 4_000_000


def matched_words(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs of equal words, increasing on both sides: a patience diff.

    Common ends are matched first; words found exactly once on each side, in order, anchor
    the rest, and the stretches between anchors are matched the same way; only a stretch
    with no such word goes to difflib. Near-linear on real text, where difflib alone is
    quadratic when changes are spread evenly (2,000 words, every 10th changed: ~2 s).
    """
    pairs: list[tuple[int, int]] = []
    todo: list[tuple[int, int, int, int] | tuple[int, int]] = [(0, len(a), 0, len(b))]
    while todo:  # a stack instead of recursion: anchors can nest deeply
        item = todo.pop()
        if len(item) == 2:
            pairs.append(item)
            continue
        alo, ahi, blo, bhi = item
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            pairs.append((alo, blo))
            alo, blo = alo + 1, blo + 1
        tail = []
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            tail.append((ahi, bhi))
        later: list = list(tail)  # pushed in reverse: the stack pops them in order
        if alo < ahi and blo < bhi:
            anchors = _unique_in_order(a, b, alo, ahi, blo, bhi)
            if anchors:
                ends = [*anchors, (ahi, bhi)]
                i, j = alo, blo
                pieces: list = []
                for ai, bj in ends:
                    pieces.append((i, ai, j, bj))
                    if ai < ahi:
                        pieces.append((ai, bj))
                    i, j = ai + 1, bj + 1
                later += reversed(pieces)
            elif (ahi - alo) * (bhi - blo) <= MAX_SEARCH_CELLS:
                blocks = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi]).get_matching_blocks()
                found = [(alo + i + k, blo + j + k) for i, j, n in blocks for k in range(n)]
                later += reversed(found)
        todo += later
    return pairs


def _unique_in_order(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> list[tuple[int, int]]:
    """Words once in a[alo:ahi] and once in b[blo:bhi], the longest run of them in the same order."""
    counts: dict[str, list[int]] = {}
    for i in range(alo, ahi):
        counts.setdefault(a[i], [0, i, 0, 0])[0] += 1
    for j in range(blo, bhi):
        entry = counts.get(b[j])
        if entry is not None:
            entry[2] += 1
            entry[3] = j
    candidates = sorted((i, j) for n_a, i, n_b, j in counts.values() if n_a == 1 and n_b == 1)
    # Longest increasing subsequence of the b positions (patience sorting).
    tops: list[int] = []
    top_index: list[int] = []
    back: list[int] = []
    for index, (_, j) in enumerate(candidates):
        at = bisect.bisect_left(tops, j)
        back.append(top_index[at - 1] if at else -1)
        if at == len(tops):
            tops.append(j)
            top_index.append(index)
        else:
            tops[at], top_index[at] = j, index
    chain, index = [], top_index[-1] if top_index else -1
    while index >= 0:
        chain.append(candidates[index])
        index = back[index]
    return chain[::-1]


def message_text(message: dict[str, Any] | None) -> str:
    """A message as readable text: content (parts one per line), then tool calls / tool call id."""
    if not message:
        return ""
    content = message.get("content")
    lines: list[str] = []
    if isinstance(content, str):
        lines.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url") or {}
                lines.append(f"[image {image.get('url', '')}{' ' + image['detail'] if image.get('detail') else ''}]")
            elif isinstance(part, dict):
                lines.append(str(part.get("text", "")))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        lines.append(f"→ {function.get('name', '')}({function.get('arguments', '')}) [{call.get('id', '')}]")
    if message.get("tool_call_id"):
        lines.append(f"(answers {message['tool_call_id']})")
    return "\n".join(lines)


def pretty(value: Any, *, sort_keys: bool = False) -> str:
    """JSON for people: indented, non-ASCII kept; a bare string stays as is.

    Diffs sort keys so that a reordered schema does not show up as a change."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=False)


@dataclass
class Row:
    label: str
    old: str
    new: str
    html: SafeString
    changed: bool
    token_delta: int | None = None


def _row(label: str, old: str, new: str, token_delta: int | None = None) -> Row:
    return Row(label, old, new, word_diff(old, new), old != new, token_delta)


def diff_versions(a: VersionContent, b: VersionContent) -> dict[str, Any]:
    """Rows for the diff page: settings, messages (by index), tools (by name), parameters (by key)."""
    settings = [
        _row("Description", a.description, b.description),
        _row("Provider", a.provider, b.provider),
        _row("Model", a.model_name, b.model_name),
    ]
    messages = []
    for i in range(max(len(a.messages), len(b.messages))):
        old = a.messages[i] if i < len(a.messages) else None
        new = b.messages[i] if i < len(b.messages) else None
        roles = " → ".join(dict.fromkeys(m.get("role", "?") for m in (old, new) if m))
        delta = _tokens(new, b.model_name) - _tokens(old, a.model_name)
        messages.append(_row(f"Message {i + 1} ({roles})", message_text(old), message_text(new), delta))
    old_tools = {t["name"]: t for t in a.tools}
    new_tools = {t["name"]: t for t in b.tools}
    tools = [
        _row(name, pretty(old_tools.get(name), sort_keys=True), pretty(new_tools.get(name), sort_keys=True))
        for name in [*old_tools, *(n for n in new_tools if n not in old_tools)]
    ]
    old_params, new_params = a.model_parameters, b.model_parameters
    params = [
        _row(key, pretty(old_params.get(key), sort_keys=True), pretty(new_params.get(key), sort_keys=True))
        for key in sorted(set(old_params) | set(new_params))
    ]
    total = pricing.estimate_input_tokens(b.messages, b.tools, b.model_name) - pricing.estimate_input_tokens(
        a.messages, a.tools, a.model_name
    )
    return {
        "sections": [
            ("Settings", settings, False),
            ("Messages", messages, True),
            ("Tools", tools, False),
            ("Parameters", params, False),
        ],
        "token_delta": total,
    }


def _tokens(message: dict[str, Any] | None, model: str) -> int:
    return pricing.estimate_input_tokens([message], model=model) if message else 0
