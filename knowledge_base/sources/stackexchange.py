"""Stack Exchange data dumps: `Posts.xml` questions with their accepted or best answer.

Each `<row>` of a dump holds a whole post in its attributes: questions (`PostTypeId="1"`, with
`Title`, `Body`, `Tags`, `AcceptedAnswerId`) and answers (`PostTypeId="2"`, with `ParentId` and
`Score`). The file is read with expat's streaming parser: no element tree is built, at most two
answers per question are kept (the accepted and the best-scored), so memory grows with the
number of questions rather than the size of the file, and every error names the line of its row.
One entry per question: the title as question, the cleaned question body as context, the
accepted answer or else the best-scored answer with at least `min_score`. Ids are
`stackexchange:<site>:<question id>`, so a re-import finds the same entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from xml.parsers import expat

from crowddesk.knowledge_base.sources.community import CommunitySource, Post, Thread, parse_time
from crowddesk.knowledge_base.sources.errors import KBImportError

QUESTION, ANSWER = "1", "2"
# "<python><pandas>" in older dumps, "|python|pandas|" since 2023.
_TAG = re.compile(r"<([^<>]+)>|(?<=\|)([^|]+)(?=\|)")
_CHUNK = 1 << 20


@dataclass
class _Question:
    id: int
    title: str
    html: str
    tags: list[str]
    accepted_answer_id: int | None
    activity_at: datetime | None


@dataclass
class _Collector:
    """Questions and their answers as the rows stream by."""

    path: Path
    questions: dict[int, _Question] = field(default_factory=dict)
    answers: dict[int, list[Post]] = field(default_factory=dict)

    def row(self, line: int, attributes: dict[str, str]) -> None:
        kind = _required(self.path, line, attributes, "PostTypeId")
        if kind == QUESTION:
            post_id = _integer(self.path, line, attributes, "Id")
            self.questions[post_id] = _Question(
                id=post_id,
                title=_required(self.path, line, attributes, "Title"),
                html=attributes.get("Body", ""),
                tags=[a or b for a, b in _TAG.findall(attributes.get("Tags", ""))],
                accepted_answer_id=_optional_integer(self.path, line, attributes, "AcceptedAnswerId"),
                activity_at=_time(self.path, line, attributes, "LastActivityDate"),
            )
        elif kind == ANSWER:
            self._add_answer(_integer(self.path, line, attributes, "ParentId"), self._answer(line, attributes))
        # Other post types (tag wikis, moderator nominations, ...) are not Q&A.

    def _add_answer(self, parent: int, post: Post) -> None:
        kept = [*self.answers.get(parent, ()), post]
        question = self.questions.get(parent)
        # Only the accepted and the best-scored answer can become the entry's answer, so at most
        # two are kept per question. Dumps list a question before its answers (by Id); an answer
        # that comes first is kept until its question arrives.
        if question is not None:
            best = min(kept, key=lambda p: (-p.score, p.id))
            kept = [p for p in kept if p is best or p.id == question.accepted_answer_id]
        self.answers[parent] = kept

    def _answer(self, line: int, attributes: dict[str, str]) -> Post:
        author = attributes.get("OwnerDisplayName") or (
            f"user{attributes['OwnerUserId']}" if attributes.get("OwnerUserId") else ""
        )
        return Post(
            id=_integer(self.path, line, attributes, "Id"),
            html=attributes.get("Body", ""),
            score=_optional_integer(self.path, line, attributes, "Score") or 0,
            author=author,
            accepted=False,  # known only from the question's AcceptedAnswerId
            activity_at=_time(self.path, line, attributes, "LastActivityDate"),
        )


class StackExchangeImporter(CommunitySource):
    """`Posts.xml` of a Stack Exchange data dump; see the module docstring."""

    format = "stackexchange"

    def threads(self, path: Path) -> Iterator[Thread]:
        collector = _Collector(path)
        _stream_rows(path, collector)
        site = self.site(path.parent.name or path.stem)
        for question in collector.questions.values():
            answers = [
                replace(post, accepted=post.id == question.accepted_answer_id)
                for post in collector.answers.get(question.id, ())
            ]
            yield Thread(
                entry_id=f"stackexchange:{site}:{question.id}",
                source=f"stackexchange:{question.id}",
                url=f"{self.site_url}/questions/{question.id}" if self.site_url else "",
                title=question.title,
                question_html=question.html,
                tags=question.tags,
                activity_at=question.activity_at,
                answers=answers,
            )


def _stream_rows(path: Path, collector: _Collector) -> None:
    parser = expat.ParserCreate()
    depth = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        line = parser.CurrentLineNumber
        if depth == 1 and name != "posts":
            raise KBImportError(path, line, f"expected a <posts> root element (Posts.xml), got <{name}>")
        if depth == 2 and name == "row":
            collector.row(line, attributes)

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise KBImportError(path, exc.lineno, f"malformed XML: {expat.ErrorString(exc.code)}") from None
    except OSError as exc:
        raise KBImportError(path, None, f"cannot read file: {exc.strerror}") from None


def _required(path: Path, line: int, attributes: dict[str, str], name: str) -> str:
    value = attributes.get(name, "").strip()
    if not value:
        raise KBImportError(path, line, f"row is missing the {name} attribute")
    return value


def _integer(path: Path, line: int, attributes: dict[str, str], name: str) -> int:
    text = _required(path, line, attributes, name)
    try:
        return int(text)
    except ValueError:
        raise KBImportError(path, line, f"{name}={text!r} is not an integer") from None


def _optional_integer(path: Path, line: int, attributes: dict[str, str], name: str) -> int | None:
    return _integer(path, line, attributes, name) if attributes.get(name, "").strip() else None


def _time(path: Path, line: int, attributes: dict[str, str], name: str) -> datetime | None:
    text = attributes.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise KBImportError(path, line, f"{name}={text!r} is not an ISO 8601 time") from None
