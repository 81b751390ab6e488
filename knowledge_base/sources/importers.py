"""Importers: read community/FAQ sources into `KBEntry` records, with their provenance.

Every importer strips whitespace, drops empty question variants, removes variants that repeat
another one of the same entry (case-insensitively), and defaults `status` to published and
`language` to "en". An entry without an `id` gets a stable one from the file stem and its first
question: `faq.yml` + "How do I reset my PIN?" -> `faq:how-do-i-reset-my-pin`. Bad input raises
`KBImportError`, whose text names the file and line: `faq.csv:12: missing answer`.

YAML (`format="yaml"`, *.yml / *.yaml)::

    entries:
      - id: reset-pin                     # optional
        question: How do I reset my PIN?  # `question`, `questions: [...]`, or both
        questions: [I forgot my PIN, Change PIN]
        answer: Settings > Security > Reset PIN.
        source_url: https://community.example.com/t/123   # optional
        tags: [cards, security]           # optional
        language: en                      # optional
        status: published                 # optional: draft | published | retired

CSV (`format="csv"`, *.csv): a header row with `question` and `answer`, and optionally `id`,
`questions` (more variants separated by " | "), `source_url`, `tags` (separated by ";", "|" or
","), `language`, `status`. Rows sharing an `id` are one entry: their questions are variants,
their answers must be equal::

    id,question,answer,questions,tags
    reset-pin,How do I reset my PIN?,Settings > Security > Reset PIN.,I forgot my PIN | Change PIN,cards;security
    reset-pin,pin reset not working,Settings > Security > Reset PIN.,,

Markdown (`format="markdown"`, *.md / *.markdown): each `## ` heading is a question, the text
below it (up to the next `#`/`##` heading) its answer. `Source: <url>` and `Tags: a, b` lines and
an `Also asked as:` bullet list of variants are taken out of the answer. Text before the first
`## ` heading is ignored::

    ## How do I reset my PIN?
    Settings > Security > Reset PIN.

    Source: https://community.example.com/t/123
    Tags: cards, security
    Also asked as:
    - I forgot my PIN

Rasa retrieval intents (`format="rasa"`, a project directory, or a *.yml holding `faq/`
intents): each `faq/<key>` intent of the NLU data is one entry with id `faq/<key>`, its examples
as questions (entity markup `[text](type)` reduced to `text`) and the first text of the
`utter_faq/<key>` response as answer; the response's `metadata.title` becomes the first question
and `metadata.source` the source URL. Responses without an intent are ignored::

    nlu:                                   # data/nlu.yml
    - intent: faq/reset_pin
      examples: |
        - How do I reset my [PIN](credential)?
    responses:                             # domain.yml (or any data file)
      utter_faq/reset_pin:
      - text: Settings > Security > Reset PIN.
        metadata: {source: "https://community.example.com/t/123", title: Reset your PIN}

Community sources (`format="stackexchange"`, *.xml; `format="discourse"`, *.json or a folder):
one entry per question thread with the accepted or best-voted answer and its provenance
(stackexchange.py, discourse.py); `CommunitySource.read` also counts the threads it skipped, by
reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from crowddesk.knowledge_base.entry_fields import entry_id_problem, source_url_problem
from crowddesk.knowledge_base.sources.community import AnswerRules, CommunitySource
from crowddesk.knowledge_base.sources.discourse import DiscourseImporter
from crowddesk.knowledge_base.sources.errors import KBImportError
from crowddesk.knowledge_base.sources.stackexchange import StackExchangeImporter
from crowddesk.knowledge_base.types import EntryStatus, KBEntry

__all__ = ["IMPORTERS", "Importer", "KBImportError", "importer_for"]

FAQ_INTENT_PREFIX = "faq/"
FAQ_RESPONSE_PREFIX = "utter_faq/"


class Importer(Protocol):
    """Reads one community/FAQ source into KB entries with their provenance."""

    format: str

    def load(self, path: Path) -> list[KBEntry]: ...


# --- shared by every format -------------------------------------------------------------------


@dataclass
class _Draft:
    """An entry as read from a source, before cleaning; `line` is where it starts."""

    line: int
    id: str
    questions: list[str]
    answer: str
    source_url: str = ""
    tags: list[str] = field(default_factory=list)
    language: str = ""
    status: str = ""
    intent: str | None = None


def _build_entries(path: Path, drafts: Iterable[_Draft]) -> list[KBEntry]:
    """Cleaned entries, in source order; two drafts with the same id are an error."""
    first_line: dict[str, int] = {}
    entries = []
    for draft in drafts:
        entry = _build_entry(path, draft)
        if entry.id in first_line:
            raise KBImportError(
                path, draft.line, f"duplicate id {entry.id!r} (first used on line {first_line[entry.id]})"
            )
        first_line[entry.id] = draft.line
        entries.append(entry)
    return entries


def _build_entry(path: Path, draft: _Draft) -> KBEntry:
    questions = unique_texts(" ".join(q.split()) for q in draft.questions)
    if not questions:
        raise KBImportError(path, draft.line, "missing question")
    answer = draft.answer.strip()
    if not answer:
        raise KBImportError(path, draft.line, "missing answer")
    status_text = draft.status.strip().lower() or EntryStatus.PUBLISHED.value
    try:
        status = EntryStatus(status_text)
    except ValueError:
        allowed = ", ".join(s.value for s in EntryStatus)
        raise KBImportError(path, draft.line, f"unknown status {draft.status!r} (expected one of: {allowed})") from None
    entry_id = draft.id.strip() or _default_id(path, questions[0])
    source_url = draft.source_url.strip()
    problem = entry_id_problem(entry_id) or source_url_problem(source_url)
    if problem is not None:
        raise KBImportError(path, draft.line, problem)
    return KBEntry(
        id=entry_id,
        questions=questions,
        answer=answer,
        source_url=source_url,
        tags=unique_texts(tag.strip() for tag in draft.tags),
        language=draft.language.strip() or "en",
        status=status,
        intent=draft.intent,
    )


def unique_texts(texts: Iterable[str]) -> list[str]:
    """Non-empty texts, first spelling kept when several differ only in case."""
    seen: set[str] = set()
    unique = []
    for text in texts:
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            unique.append(text)
    return unique


def _default_id(path: Path, question: str) -> str:
    """Stable across re-imports of the same file, as long as the first question is unchanged."""
    return f"{_slug(path.stem)}:{_slug(question)}"


def _slug(text: str) -> str:
    return re.sub(r"[\W_]+", "-", text.casefold()).strip("-")[:80].rstrip("-")


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KBImportError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise KBImportError(path, None, f"cannot read file: {exc.strerror}") from None


def _load_yaml(path: Path) -> Any:
    try:
        # Round-trip loader: its nodes remember their line numbers for error messages.
        return YAML(typ="rt").load(_read_text(path))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.problem and exc.context and exc.context_mark is not None:
            # The problem is often only noticed lines after the construct that caused it.
            message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise KBImportError(path, line, message) from None
    except YAMLError as exc:
        raise KBImportError(path, None, f"invalid YAML: {exc}") from None


def _key_line(node: CommentedMap, key: str) -> int:
    return int(node.lc.key(key)[0]) + 1


def _item_line(node: CommentedSeq, index: int) -> int:
    return int(node.lc.item(index)[0]) + 1


def _yaml_text(path: Path, node: CommentedMap, key: str) -> str:
    """The text under `key`, "" when absent; any non-text value is an error at its line."""
    value = node.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KBImportError(path, _key_line(node, key), f"'{key}' must be text")
    return str(value)  # plain str, not ruamel's scalar subclasses


def _yaml_texts(path: Path, node: CommentedMap, key: str) -> list[str]:
    """The list of texts under `key`, [] when absent."""
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, CommentedSeq) or not all(isinstance(v, str) for v in value):
        raise KBImportError(path, _key_line(node, key), f"'{key}' must be a list of texts")
    return [str(v) for v in value]


# --- YAML --------------------------------------------------------------------------------------


class YamlImporter:
    """`entries:` list of mappings; see the module docstring."""

    format = "yaml"
    _KEYS = frozenset({"id", "question", "questions", "answer", "source_url", "tags", "language", "status"})

    def load(self, path: Path) -> list[KBEntry]:
        document = _load_yaml(path)
        if not isinstance(document, CommentedMap) or "entries" not in document:
            raise KBImportError(path, 1, "expected a mapping with an 'entries:' list")
        items = document["entries"]
        if not isinstance(items, CommentedSeq):
            raise KBImportError(path, _key_line(document, "entries"), "'entries' must be a list")
        return _build_entries(path, (self._draft(path, items, i) for i in range(len(items))))

    def _draft(self, path: Path, items: CommentedSeq, index: int) -> _Draft:
        line = _item_line(items, index)
        item = items[index]
        if not isinstance(item, CommentedMap):
            raise KBImportError(path, line, "each entry must be a mapping with 'question' and 'answer'")
        for key in item:
            if key not in self._KEYS:
                raise KBImportError(
                    path,
                    _key_line(item, key),
                    f"unknown key {key!r} (allowed: {', '.join(sorted(self._KEYS))})",
                )
        entry_id = item.get("id")
        return _Draft(
            line=line,
            id=str(entry_id) if isinstance(entry_id, int) else _yaml_text(path, item, "id"),
            questions=[_yaml_text(path, item, "question"), *_yaml_texts(path, item, "questions")],
            answer=_yaml_text(path, item, "answer"),
            source_url=_yaml_text(path, item, "source_url"),
            tags=_yaml_texts(path, item, "tags"),
            language=_yaml_text(path, item, "language"),
            status=_yaml_text(path, item, "status"),
        )


# --- CSV ---------------------------------------------------------------------------------------


class CsvImporter:
    """One row per question; rows sharing an `id` merge; see the module docstring."""

    format = "csv"
    _REQUIRED = ("question", "answer")
    _COLUMNS = frozenset({*_REQUIRED, "id", "questions", "source_url", "tags", "language", "status"})
    _SINGLE_VALUED = ("source_url", "language", "status")

    def load(self, path: Path) -> list[KBEntry]:
        reader = csv.reader(io.StringIO(_read_text(path)))
        drafts: dict[str, _Draft] = {}
        try:
            columns = self._columns(path, next(reader, None))
            row_start = reader.line_num + 1
            for row in reader:
                # A quoted field may span lines: the row starts after the previous row ended.
                line, row_start = row_start, reader.line_num + 1
                if any(value.strip() for value in row):
                    self._add_row(path, line, self._as_record(path, line, columns, row), drafts)
        except csv.Error as exc:
            raise KBImportError(path, reader.line_num, f"malformed CSV: {exc}") from None
        return _build_entries(path, drafts.values())

    def _columns(self, path: Path, header: list[str] | None) -> list[str]:
        if header is None:
            raise KBImportError(path, None, "empty file; expected a header row with question,answer")
        columns = [name.strip().lower() for name in header]
        missing = [name for name in self._REQUIRED if name not in columns]
        if missing:
            raise KBImportError(path, 1, f"header is missing column(s): {', '.join(missing)}")
        for name in columns:
            if name not in self._COLUMNS:
                raise KBImportError(path, 1, f"unknown column {name!r} (allowed: {', '.join(sorted(self._COLUMNS))})")
            if columns.count(name) > 1:
                raise KBImportError(path, 1, f"column {name!r} appears twice")
        return columns

    @staticmethod
    def _as_record(path: Path, line: int, columns: list[str], row: list[str]) -> dict[str, str]:
        if len(row) > len(columns):
            raise KBImportError(path, line, f"row has {len(row)} fields but the header has {len(columns)} columns")
        # Missing trailing fields are empty optional values (spreadsheets drop them).
        return {name: value.strip() for name, value in zip(columns, [*row, *[""] * len(columns)])}

    def _add_row(self, path: Path, line: int, record: dict[str, str], drafts: dict[str, _Draft]) -> None:
        if not record["question"]:
            raise KBImportError(path, line, "missing question")
        if not record["answer"]:
            raise KBImportError(path, line, "missing answer")
        questions = [record["question"], *record.get("questions", "").split(" | ")]
        tags = re.split(r"[;|,]", record.get("tags", ""))
        entry_id = record.get("id", "") or _default_id(path, record["question"])
        draft = drafts.get(entry_id)
        if draft is None:
            drafts[entry_id] = _Draft(
                line=line,
                id=entry_id,
                questions=questions,
                answer=record["answer"],
                source_url=record.get("source_url", ""),
                tags=tags,
                language=record.get("language", ""),
                status=record.get("status", ""),
            )
            return
        if record["answer"] != draft.answer:
            raise KBImportError(path, line, f"id {entry_id!r} has a different answer than on line {draft.line}")
        for name in self._SINGLE_VALUED:
            value, earlier = record.get(name, ""), getattr(draft, name)
            if value and earlier and value != earlier:
                raise KBImportError(
                    path, line, f"id {entry_id!r} has {name} {value!r}, but {earlier!r} on line {draft.line}"
                )
            setattr(draft, name, earlier or value)
        draft.questions.extend(questions)
        draft.tags.extend(tags)


# --- Markdown ----------------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SOURCE_LINE = re.compile(r"^source:\s*(\S.*)$", re.IGNORECASE)
_TAGS_LINE = re.compile(r"^tags:\s*(.*)$", re.IGNORECASE)
_ALSO_ASKED = re.compile(r"^also asked as:\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")


@dataclass(frozen=True)
class _MarkdownLine:
    number: int
    text: str
    in_code: bool  # inside a fenced code block: never metadata, never a heading


class MarkdownImporter:
    """`## Question` headings with the answer below; see the module docstring."""

    format = "markdown"

    def load(self, path: Path) -> list[KBEntry]:
        return _build_entries(path, (self._draft(path, *section) for section in self._sections(path)))

    @staticmethod
    def _sections(path: Path) -> list[tuple[int, str, list[_MarkdownLine]]]:
        """(heading line, heading text, body lines) for every `## ` heading."""
        sections: list[tuple[int, str, list[_MarkdownLine]]] = []
        body: list[_MarkdownLine] | None = None
        in_fence = False
        for number, text in enumerate(_read_text(path).splitlines(), start=1):
            is_fence = bool(_FENCE.match(text))
            heading = None if in_fence or is_fence else _HEADING.match(text)
            if heading and len(heading.group(1)) <= 2:
                body = None
                if len(heading.group(1)) == 2:
                    body = []
                    sections.append((number, (heading.group(2) or "").strip(), body))
                continue
            if body is not None:
                body.append(_MarkdownLine(number, text, in_code=in_fence or is_fence))
            in_fence = in_fence != is_fence
        return sections

    @staticmethod
    def _draft(path: Path, line: int, question: str, body: list[_MarkdownLine]) -> _Draft:
        if not question:
            raise KBImportError(path, line, "empty heading; expected a question after '##'")
        draft = _Draft(line=line, id="", questions=[question], answer="")
        answer_lines: list[str] = []
        in_variant_list = False  # after "Also asked as:", until a line that is no bullet
        for current in body:
            text = current.text.strip()
            bullet = _BULLET.match(current.text)
            if in_variant_list and not current.in_code and (bullet or not text):
                if bullet:
                    draft.questions.append(bullet.group(1))
                continue
            in_variant_list = False
            if current.in_code:
                answer_lines.append(current.text)
            elif match := _SOURCE_LINE.match(text):
                draft.source_url = match.group(1)
            elif match := _TAGS_LINE.match(text):
                draft.tags = match.group(1).split(",")
            elif _ALSO_ASKED.match(text):
                in_variant_list = True
            else:
                answer_lines.append(current.text)
        draft.answer = re.sub(r"\n{3,}", "\n\n", "\n".join(answer_lines))
        if not draft.answer.strip():
            raise KBImportError(path, line, f"heading {question!r} has no answer below it")
        return draft


# --- Rasa retrieval intents --------------------------------------------------------------------

_ENTITY_MARKUP = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass
class _RetrievalIntent:
    path: Path
    line: int
    examples: list[str]


@dataclass(frozen=True)
class _FaqResponse:
    path: Path
    line: int
    text: str
    source_url: str
    title: str


class RasaRetrievalImporter:
    """`faq/<key>` retrieval intents plus their `utter_faq/<key>` responses; see the module docstring."""

    format = "rasa"

    def load(self, path: Path) -> list[KBEntry]:
        """A project directory (data/**/*.yml + domain), or one file holding both NLU and responses."""
        if path.is_dir():
            data_files = sorted(p for pattern in ("*.yml", "*.yaml") for p in (path / "data").rglob(pattern))
            domain_files = [p for p in (path / "domain.yml", path / "domain.yaml") if p.is_file()]
            if (path / "domain").is_dir():
                domain_files += sorted(p for pattern in ("*.yml", "*.yaml") for p in (path / "domain").rglob(pattern))
            if not data_files:
                raise KBImportError(path, None, "not a Rasa project: no data/**/*.yml files")
            return self.load_project(data_files, [*domain_files, *data_files])
        return self.load_project([path], [path])

    def load_project(self, nlu_paths: Sequence[Path], response_paths: Sequence[Path]) -> list[KBEntry]:
        documents: dict[Path, Any] = {}

        def document(path: Path) -> Any:
            if path not in documents:
                documents[path] = _load_yaml(path)
            return documents[path]

        intents: dict[str, _RetrievalIntent] = {}
        for path in nlu_paths:
            self._collect_intents(path, document(path), intents)
        responses: dict[str, _FaqResponse] = {}
        for path in response_paths:
            self._collect_responses(path, document(path), responses)

        entries = []
        for key, intent in intents.items():
            response = responses.get(key)
            if response is None:
                searched = ", ".join(str(p) for p in response_paths)
                raise KBImportError(
                    intent.path,
                    intent.line,
                    f"retrieval intent '{FAQ_INTENT_PREFIX}{key}' has no response "
                    f"'{FAQ_RESPONSE_PREFIX}{key}' (looked in: {searched})",
                )
            draft = _Draft(
                line=intent.line,
                id=f"{FAQ_INTENT_PREFIX}{key}",
                questions=[response.title, *intent.examples],
                answer=response.text,
                source_url=response.source_url,
                intent=f"{FAQ_INTENT_PREFIX}{key}",
            )
            # Ids are unique by construction (one entry per key), so no duplicate check here.
            entries.append(_build_entry(intent.path, draft))
        return entries

    @staticmethod
    def _collect_intents(path: Path, document: Any, intents: dict[str, _RetrievalIntent]) -> None:
        if not isinstance(document, CommentedMap) or "nlu" not in document:
            return
        items = document["nlu"]
        if not isinstance(items, CommentedSeq):
            raise KBImportError(path, _key_line(document, "nlu"), "'nlu' must be a list")
        for index, item in enumerate(items):
            if not isinstance(item, CommentedMap):
                raise KBImportError(path, _item_line(items, index), "each 'nlu' item must be a mapping")
            name = item.get("intent")
            if not isinstance(name, str) or not name.startswith(FAQ_INTENT_PREFIX):
                continue
            key = name.removeprefix(FAQ_INTENT_PREFIX)
            examples = RasaRetrievalImporter._examples(path, item)
            if key in intents:  # Rasa merges the examples of an intent listed twice
                intents[key].examples.extend(examples)
            else:
                intents[key] = _RetrievalIntent(path, _item_line(items, index), examples)

    @staticmethod
    def _examples(path: Path, item: CommentedMap) -> list[str]:
        value = item.get("examples")
        if isinstance(value, str):
            # The block's text starts on the line after `examples: |`.
            first_line = int(item.lc.value("examples")[0]) + 2
            examples = []
            for offset, raw in enumerate(value.splitlines()):
                text = raw.strip()
                if not text:
                    continue
                if not text.startswith("-"):
                    raise KBImportError(path, first_line + offset, f"example {text!r} must start with '- '")
                examples.append(text[1:])
        elif isinstance(value, CommentedSeq) and all(
            isinstance(v, CommentedMap) and isinstance(v.get("text"), str) for v in value
        ):
            examples = [str(v["text"]) for v in value]
        else:
            raise KBImportError(
                path,
                int(item.lc.line) + 1,
                f"intent {item.get('intent')!r} needs 'examples:' as a '- example' block "
                "or a list of {text: ...} mappings",
            )
        return [_ENTITY_MARKUP.sub(r"\1", example) for example in examples]

    @staticmethod
    def _collect_responses(path: Path, document: Any, responses: dict[str, _FaqResponse]) -> None:
        if not isinstance(document, CommentedMap) or "responses" not in document:
            return
        section = document["responses"]
        if not isinstance(section, CommentedMap):
            raise KBImportError(path, _key_line(document, "responses"), "'responses' must be a mapping")
        for name, variants in section.items():
            if not isinstance(name, str) or not name.startswith(FAQ_RESPONSE_PREFIX):
                continue
            line = _key_line(section, name)
            key = name.removeprefix(FAQ_RESPONSE_PREFIX)
            if key in responses:
                earlier = responses[key]
                raise KBImportError(path, line, f"response {name!r} is also defined at {earlier.path}:{earlier.line}")
            variant = next(
                (
                    v
                    for v in (variants if isinstance(variants, CommentedSeq) else ())
                    if isinstance(v, CommentedMap) and isinstance(v.get("text"), str)
                ),
                None,
            )
            if variant is None:
                raise KBImportError(path, line, f"response {name!r} has no variant with a 'text'")
            metadata = variant.get("metadata")
            if metadata is None:
                metadata = CommentedMap()
            if not isinstance(metadata, CommentedMap):
                raise KBImportError(path, _key_line(variant, "metadata"), "'metadata' must be a mapping")
            responses[key] = _FaqResponse(
                path=path,
                line=line,
                text=str(variant["text"]),
                source_url=_yaml_text(path, metadata, "source"),
                title=_yaml_text(path, metadata, "title"),
            )


# --- choosing an importer ----------------------------------------------------------------------

IMPORTERS: dict[str, Importer] = {
    importer.format: importer
    for importer in (YamlImporter(), CsvImporter(), MarkdownImporter(), RasaRetrievalImporter())
}
# Community sources: built per import, with the site's URL and the answer rules.
COMMUNITY_FORMATS: dict[str, type[CommunitySource]] = {
    source.format: source for source in (StackExchangeImporter, DiscourseImporter)
}

_FORMAT_BY_SUFFIX = {
    ".yml": "yaml",
    ".yaml": "yaml",
    ".csv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".xml": "stackexchange",
    ".json": "discourse",
}
_FAQ_INTENT_LINE = re.compile(r"^\s*-\s*intent:\s*[\"']?faq/", re.MULTILINE)


def importer_for(
    path: Path, format: str | None = None, *, site_url: str = "", rules: AnswerRules = AnswerRules()
) -> Importer:
    """The importer for `path`: by explicit `format`, else by what the path is and its extension.

    `site_url` and `rules` configure the community formats (Stack Exchange, Discourse)."""
    known = ", ".join(sorted([*IMPORTERS, *COMMUNITY_FORMATS]))
    if format is not None:
        name = format.strip().lower()
        if name not in IMPORTERS and name not in COMMUNITY_FORMATS:
            raise KBImportError(path, None, f"unknown format {format!r} (known formats: {known})")
    elif path.is_dir():
        name = "rasa"
    else:
        detected = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
        if detected is None:
            raise KBImportError(
                path,
                None,
                f"cannot tell the format from the extension {path.suffix!r} "
                f"(known formats: {known}; extensions: {', '.join(_FORMAT_BY_SUFFIX)})",
            )
        is_rasa = detected == "yaml" and _FAQ_INTENT_LINE.search(_read_text(path))
        name = "rasa" if is_rasa else detected
    if name in COMMUNITY_FORMATS:
        return COMMUNITY_FORMATS[name](site_url, rules)
    return IMPORTERS[name]
