"""Text for chat platforms: length in the platforms' units, splitting, Markdown → Slack mrkdwn.

Platforms count message length in UTF-16 code units (JavaScript string length) or in code
points; UTF-16 units are never fewer, so :func:`units` is the conservative measure used for
every limit. :func:`split` cuts on paragraph, then line, then word boundaries, keeps fenced
code blocks whole when they fit and, when one does not, closes and reopens the fence in each
part so every part renders as code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

MAX_PARTS = 10  # messages per answer; the rest is cut (rate limits, noise)
TRUNCATED = "… (answer truncated)"
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")

Measure = Callable[[str], int]


def units(text: str) -> int:
    """Length in UTF-16 code units (what JavaScript, Discord, Telegram and LINE count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split(
    text: str, limit: int, *, max_parts: int = MAX_PARTS, measure: Measure = units
) -> list[str]:
    """``text`` in parts of at most ``limit`` (by ``measure``), at most ``max_parts`` of them.

    Empty or blank text gives ``[]``. When the text needs more parts than allowed, the last
    part ends with :data:`TRUNCATED`.
    """
    text = text.strip("\n")
    if not text.strip():
        return []
    if measure(text) <= limit:
        return [text]
    parts = _pack(_pieces(text, limit, measure), "\n\n", limit, measure, split_long=False)
    if len(parts) > max_parts:
        last = parts[max_parts - 1]
        room = limit - measure(TRUNCATED) - 1
        while (excess := measure(last) - room) > 0:
            last = last[: len(last) - max(1, (excess + 1) // 2)]
        parts = [*parts[: max_parts - 1], f"{last}\n{TRUNCATED}"]
    return parts


def _blocks(text: str) -> Iterator[str]:
    """Paragraphs (separated by blank lines) and whole fenced code blocks, in order."""
    lines: list[str] = []
    fence = ""
    for line in text.split("\n"):
        opener = _FENCE.match(line)
        if fence:
            lines.append(line)
            if opener and opener.group(1).startswith(fence) and not line.strip()[len(fence) :]:
                fence = ""
                yield "\n".join(lines)
                lines = []
            continue
        if opener:
            if lines:
                yield "\n".join(lines)
                lines = []
            fence = opener.group(1)
            lines.append(line)
        elif line.strip():
            lines.append(line)
        elif lines:
            yield "\n".join(lines)
            lines = []
    if lines:
        yield "\n".join(lines)


def _fit(block: str, limit: int, measure: Measure) -> list[str]:
    """``block`` as pieces of at most ``limit``."""
    if measure(block) <= limit:
        return [block]
    lines = block.split("\n")
    opener = _FENCE.match(lines[0])
    if opener and len(lines) > 1:
        head = lines[0]
        close = opener.group(1)
        body = lines[1:-1] if _FENCE.match(lines[-1]) else lines[1:]
        room = limit - measure(head) - measure(close) - 2
        return [f"{head}\n{chunk}\n{close}" for chunk in _pack(body, "\n", room, measure)]
    return _pack(lines, "\n", limit, measure)


def _pack(
    items: Iterable[str], sep: str, limit: int, measure: Measure, *, split_long: bool = True
) -> list[str]:
    """Join items with ``sep`` greedily into pieces of at most ``limit``; items too long on
    their own are split by words, then cut (unless ``split_long`` is false: already cut)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    gap = measure(sep)
    for item in items:
        for part in _shorten(item, sep, limit, measure) if split_long else (item,):
            length = measure(part)
            if current and size + gap + length <= limit:
                current.append(part)
                size += gap + length
            else:
                if current:
                    pieces.append(sep.join(current))
                current, size = [part], length
    if current:
        pieces.append(sep.join(current))
    return pieces


def _pieces(text: str, limit: int, measure: Measure) -> Iterator[str]:
    for block in _blocks(text):
        yield from _fit(block, limit, measure)


def _shorten(item: str, sep: str, limit: int, measure: Measure) -> list[str]:
    if measure(item) <= limit:
        return [item]
    if sep == "\n" and " " in item.strip():
        return _pack(item.split(" "), " ", limit, measure)
    cuts: list[str] = []
    rest = item
    while rest:
        size = min(len(rest), limit)
        while size > 1 and (excess := measure(rest[:size]) - limit) > 0:
            size -= max(1, (excess + 1) // 2)  # a character is 1 or 2 units: never too far
        cuts.append(rest[:size])
        rest = rest[size:]
    return cuts


# -- Markdown → Slack mrkdwn ---------------------------------------------------------------------

_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_QUOTE = re.compile(r"^(\s*)&gt;\s?")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\((\S+?)(?:\s+\"[^\"\n]*\")?\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)(?:\s+\"[^\"\n]*\")?\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_BOLD_MARK = "\x00"


def escape(text: str) -> str:
    """Slack's required escapes: ``&``, ``<`` and ``>`` (so no text becomes a mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(markdown: str) -> str:
    """Common Markdown as Slack mrkdwn: bold, italics, strike, links, images, headings,
    bullets and quotes converted; code blocks and inline code kept (content escaped only).

    Every ``&``, ``<`` and ``>`` of the text is escaped first, so the only ``<…>`` sequences
    are the links made here: an answer cannot ping ``<!channel>`` or a user.
    """
    out: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        opener = _FENCE.match(line)
        if fence:
            if opener and opener.group(1).startswith(fence) and not line.strip()[len(fence) :]:
                fence = ""
                out.append("```")
            else:
                out.append(escape(line))
            continue
        if opener:
            fence = opener.group(1)
            out.append("```")  # Slack shows a language tag as text: drop it
            continue
        out.append(_line(escape(line)))
    if fence:
        out.append("```")
    return "\n".join(out)


def _line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        title = _BOLD.sub(lambda m: m.group(1) or m.group(2), heading.group(1))
        return f"*{_inline(title, bold_ok=False)}*" if title else ""
    line = _QUOTE.sub(lambda m: f"{m.group(1)}> ", line, count=1)
    line = _BULLET.sub(lambda m: f"{m.group(1)}• ", line, count=1)
    return _inline(line)


def _inline(text: str, *, bold_ok: bool = True) -> str:
    pieces = _INLINE_CODE.split(text)
    for index in range(0, len(pieces), 2):  # even indexes are outside `code`
        piece = pieces[index]
        piece = _IMAGE.sub(lambda m: f"<{m.group(2)}|{m.group(1) or 'image'}>", piece)
        piece = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", piece)
        if bold_ok:
            piece = _BOLD.sub(
                lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", piece
            )
        piece = _ITALIC.sub(r"_\1_", piece)
        piece = _STRIKE.sub(r"~\1~", piece)
        pieces[index] = piece.replace(_BOLD_MARK, "*")
    return "".join(pieces)
