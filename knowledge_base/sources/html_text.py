"""Community HTML (Stack Exchange bodies, Discourse `cooked` posts) to readable plain text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "br", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "hr"}
)
# Images and scripts carry no answer text; Discourse's lightbox metadata only repeats file names.
_SKIPPED = frozenset({"script", "style", "img", "svg"})
_SKIPPED_CLASSES = frozenset({"meta", "lightbox-wrapper"})
# Elements without an end tag: they never open a skipped region.
_VOID = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._pre_depth = 0
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        if self._skip_depth or tag in _SKIPPED or classes & _SKIPPED_CLASSES:
            if tag not in _VOID:
                self._skip_depth += 1
            return
        if tag == "pre":
            self._pre_depth += 1
            self.parts.append("\n\n```\n")
        elif tag == "code" and not self._pre_depth:
            self.parts.append("`")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:  # `<br/>` also arrives here; its start tag did the work
            return
        if self._skip_depth:
            self._skip_depth -= 1
            return
        if tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
            self.parts.append("\n```\n\n")
        elif tag == "code" and not self._pre_depth:
            self.parts.append("`")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        # Outside code, HTML whitespace (newlines included) is one space.
        self.parts.append(data.rstrip("\n") if self._pre_depth else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Paragraphs separated by blank lines, list items as "- ", code blocks fenced with ```."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines: list[str] = []
    in_code = False
    for line in "".join(extractor.parts).splitlines():
        if line.strip() == "```":
            in_code = not in_code
        # Code keeps its indentation and blank lines; prose loses the parser's stray spaces.
        if in_code or line.strip() == "```":
            lines.append(line.rstrip())
        elif line.strip() or (lines and lines[-1]):
            lines.append(line.strip())
    return "\n".join(lines).strip()
