"""Discourse topics: the JSON of `/t/{id}.json`, a file holding a list of them, or a directory.

A topic's title is the question and its first post (`cooked` HTML) the context; the answer is
the post the asker accepted (Discourse Solved: the topic's `accepted_answer.post_number`, or a
post's `"accepted_answer": true`), else the most-liked reply with at least `min_score` likes.
Only regular posts (`post_type` 1) count. Ids are `discourse:<site>:<topic id>`. Errors name the
file and, for a problem inside a topic, the line of its `"id"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crowddesk.knowledge_base.sources.community import CommunitySource, Post, Thread, parse_time
from crowddesk.knowledge_base.sources.errors import KBImportError

REGULAR_POST = 1
LIKE_ACTION = 2  # actions_summary id of a like, for versions without `like_count`


class DiscourseImporter(CommunitySource):
    """Discourse topic JSON; see the module docstring."""

    format = "discourse"

    def threads(self, path: Path) -> Iterator[Thread]:
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        if not files:
            raise KBImportError(path, None, "no *.json topic files in this directory")
        for file in files:
            for topic in _topics(file):
                yield self._thread(file, topic)

    def _thread(self, file: Path, topic: _JsonObject) -> Thread:
        data = topic.data
        topic_id = topic.field("id", int)
        posts = [p for p in topic.posts() if p.data.get("post_type", REGULAR_POST) == REGULAR_POST]
        first = next((p for p in posts if p.field("post_number", int) == 1), None)
        if first is None:
            raise KBImportError(file, topic.line, f"topic {topic_id} has no first post (post_number 1)")
        solved = data.get("accepted_answer")  # Discourse Solved's summary of the accepted post
        accepted_number = solved.get("post_number") if isinstance(solved, dict) else None
        answers = [
            Post(
                id=post.field("post_number", int),
                html=post.field("cooked", str),
                score=_likes(post.data),
                author=str(post.data.get("username", "")),
                accepted=bool(post.data.get("accepted_answer")) or post.data.get("post_number") == accepted_number,
                activity_at=post.time("updated_at"),
            )
            for post in posts
            if post is not first
        ]
        slug = data.get("slug") or "-"
        return Thread(
            entry_id=f"discourse:{self.site(file.parent.name)}:{topic_id}",
            source=f"discourse:{topic_id}",
            url=f"{self.site_url}/t/{slug}/{topic_id}" if self.site_url else "",
            title=topic.field("title", str),
            question_html=first.field("cooked", str),
            # Plain names, or {"id", "name", "slug"} objects since Discourse 3.2.
            tags=[str(t.get("name", "")) if isinstance(t, dict) else str(t) for t in data.get("tags") or []],
            activity_at=topic.time("last_posted_at"),
            answers=answers,
        )


class _JsonObject:
    """A topic or post object of a topic file, with the line its `"id"` is on, for error messages."""

    def __init__(self, file: Path, text: str, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise KBImportError(file, None, f"{where} must be a JSON object (a Discourse topic or post)")
        self.file, self.text, self.data, self.where = file, text, data, where
        self.line = _line_of(text, data.get("id"))

    def field(self, name: str, kind: type) -> Any:
        value = self.data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            expected = "an integer" if kind is int else "text"
            raise KBImportError(self.file, self.line, f"{self.where}: '{name}' must be {expected}, got {value!r}")
        return value

    def time(self, name: str) -> Any:
        value = self.data.get(name)
        if not value:
            return None
        try:
            return parse_time(str(value))
        except ValueError:
            raise KBImportError(self.file, self.line, f"{self.where}: '{name}' {value!r} is not a time") from None

    def posts(self) -> Iterator[_JsonObject]:
        stream = self.data.get("post_stream")
        posts = stream.get("posts") if isinstance(stream, dict) else None
        if not isinstance(posts, list):
            raise KBImportError(self.file, self.line, f"{self.where}: expected post_stream.posts, a list of posts")
        for index, post in enumerate(posts):
            yield _JsonObject(self.file, self.text, post, f"{self.where} post_stream.posts[{index}]")


def _topics(file: Path) -> Iterator[_JsonObject]:
    try:
        text = file.read_text(encoding="utf-8")
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KBImportError(file, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KBImportError(file, None, f"cannot read file: {exc}") from None
    if isinstance(document, list):  # an export: a list of topics
        for index, topic in enumerate(document):
            yield _JsonObject(file, text, topic, f"topic [{index}]")
    else:
        yield _JsonObject(file, text, document, "topic")


def _likes(post: dict[str, Any]) -> int:
    if isinstance(post.get("like_count"), int):
        return int(post["like_count"])
    actions = post.get("actions_summary") or []
    return sum(int(a.get("count", 0)) for a in actions if isinstance(a, dict) and a.get("id") == LIKE_ACTION)


def _line_of(text: str, object_id: Any) -> int | None:
    """The line of the first `"id": <object_id>` in the file (JSON parsers keep no positions)."""
    if not isinstance(object_id, int):
        return None
    match = re.search(rf'"id"\s*:\s*{object_id}\b', text)
    return text.count("\n", 0, match.start()) + 1 if match else None
