"""Stack Exchange import: time and peak memory of `crowddesk kb import` on a synthetic Posts.xml.

    python -m benchmarks.kb_import [--sizes 12000,60000] [--out benchmarks/results/kb_import.json]

The dump is generated (seeded, so every run reads the same file) in the shape of a real one:
about a third of the posts are questions with HTML bodies (paragraphs, inline code, fenced code
blocks, links), the rest answers with power-law scores; 45% of answered questions have an
accepted answer, which is often not the top-scored one; 3% of posts carry PII (an e-mail, a
phone number, a Luhn-valid card number or a valid IBAN) and as many carry an order number that
looks like a card but fails the Luhn check; 4% of questions re-ask an earlier one in other
words, and some answers are one-word thanks ("too short"). Each size is imported in a fresh
process into a fresh SQLite file, exactly as the command does it: streaming parse, HTML
cleaning, redaction, near-duplicate merging with all-MiniLM-L6-v2 (encoding the titles is part of
the time) and the upserts. Memory is VmHWM (peak RSS) from /proc/self/status: after parsing
(before the encoder loads), and at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from benchmarks import RESULTS_DIR, accuracy_machine_info, write_results
from benchmarks.kb_scale import memory_mb
from benchmarks.latency import comma_separated_ints
from crowddesk.bot.evaluation.metrics import format_table

SITE_URL = "https://bank.stackexchange.com"
SEED = 20240601
PII_SHARE = 0.03
PARAPHRASE_SHARE = 0.04
ACCEPTED_SHARE = 0.45
_DUMP_TIME = "%Y-%m-%dT%H:%M:%S.000"  # dumps' times: UTC without a zone

_PRODUCTS = [
    "debit card",
    "credit card",
    "savings account",
    "mobile app",
    "web banking",
    "standing order",
    "direct debit",
    "overdraft",
    "mortgage",
    "loan",
    "PIN",
    "contactless payment",
    "Apple Pay",
    "Google Pay",
    "SEPA transfer",
    "SWIFT transfer",
    "statement",
    "two-factor login",
    "cheque",
    "currency exchange",
    "ATM withdrawal",
    "joint account",
    "business account",
    "card limit",
]
_ASKS = [
    "How do I {verb} my {product}?",
    "Why can't I {verb} my {product}?",
    "What does error {code} mean when I {verb} my {product}?",
    "Is it possible to {verb} my {product} abroad?",
    "{product} stopped working after I tried to {verb} it",
    "How long does it take to {verb} a {product}?",
]
_REASKS = {"How do I": "How can I", "Why can't I": "Why am I unable to", "Is it possible to": "Can I"}
_SITUATIONS = [
    "",
    "",
    "",
    " on Android",
    " on iOS",
    " after moving abroad",
    " as a student",
    " for my child",
    " while travelling",
    " after a name change",
    " without the app",
    " from a new phone",
    " on a business account",
    " after the last update",
    " in another currency",
    " at the weekend",
]
_VERBS = [
    "activate",
    "cancel",
    "renew",
    "reset",
    "freeze",
    "unblock",
    "change",
    "close",
    "open",
    "top up",
    "link",
    "verify",
    "dispute",
    "upgrade",
    "replace",
]


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = sum(d if i % 2 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    number = "".join(map(str, digits)) + str((10 - total % 10) % 10)
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def _pii(rng: random.Random) -> str:
    return rng.choice(
        [
            f"my mail is user{rng.randrange(10**5)}@example.org",
            f"call me on +44 20 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
            f"the card is {_luhn_card(rng)}",
            "my IBAN is DE89 3704 0044 0532 0130 00",
        ]
    )


def _paragraph(rng: random.Random, product: str) -> str:
    sentences = [
        f"I have had my {product} for {rng.randrange(1, 12)} years and this never happened.",
        f"The app shows <code>E-{rng.randrange(1000, 9999)}</code> and then closes.",
        f"Support told me to wait {rng.randrange(2, 10)} working days.",
        f'See <a href="{SITE_URL}/help">the help page</a>, it does not cover this case.',
        "I already reinstalled the app and cleared the cache.",
    ]
    text = " ".join(rng.sample(sentences, rng.randrange(2, 5)))
    roll = rng.random()
    if roll < PII_SHARE:
        text += f" If you need it, {_pii(rng)}."
    elif roll < 2 * PII_SHARE:
        text += f" My order {_luhn_card(rng)[:-1]}{rng.randrange(10)} is stuck."  # mostly Luhn-invalid
    return f"<p>{text}</p>"


def _code_block(rng: random.Random) -> str:
    lines = [
        f"curl -H 'Authorization: Bearer $TOKEN' {SITE_URL}/api/v{rng.randrange(1, 4)}/cards",
        "  | jq '.cards[] | {id, status}'",
    ]
    return "<pre><code>" + escape("\n".join(lines)) + "\n</code></pre>"


def _body(rng: random.Random, product: str) -> str:
    parts = [_paragraph(rng, product) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.3:
        parts.insert(1, _code_block(rng))
    return "\n\n".join(parts)


def _answer_body(rng: random.Random, product: str, verb: str) -> str:
    if rng.random() < 0.05:
        return "<p>Thanks!</p>"
    steps = "".join(
        f"<li>Step {n}: open {product} settings and tap <strong>{verb}</strong>.</li>"
        for n in range(1, rng.randrange(2, 5))
    )
    return f"<p>You can {verb} your {product} in the app.</p><ol>{steps}</ol>" + _body(rng, product)


def _rows(posts: int, rng: random.Random) -> Iterator[dict[str, str]]:
    """Rows in dump order (by Id): each question followed by its answers."""
    start = datetime(2019, 1, 1, tzinfo=UTC)
    titles: list[str] = []
    next_id = 1
    while next_id <= posts:
        product, verb = rng.choice(_PRODUCTS), rng.choice(_VERBS)
        title = rng.choice(_ASKS).format(product=product, verb=verb, code=f"E-{rng.randrange(1000, 9999)}")
        title = title.rstrip("?") + rng.choice(_SITUATIONS) + ("?" if title.endswith("?") else "")
        if titles and rng.random() < PARAPHRASE_SHARE:
            earlier = rng.choice(titles)
            title = next((earlier.replace(a, b) for a, b in _REASKS.items() if earlier.startswith(a)), earlier + " ")
        titles.append(title)
        created = start + timedelta(minutes=rng.randrange(0, 3 * 365 * 24 * 60))
        answers = [next_id + 1 + n for n in range(min(rng.choice([0, 1, 1, 2, 2, 3, 4]), posts - next_id))]
        accepted = rng.choice(answers) if answers and rng.random() < ACCEPTED_SHARE / 0.85 else None
        question = {
            "Id": str(next_id),
            "PostTypeId": "1",
            "Title": title,
            "Body": _body(rng, product),
            "Tags": "".join(f"<{t}>" for t in {product.replace(" ", "-").lower(), verb.replace(" ", "-")}),
            "Score": str(int(rng.paretovariate(1.5)) - 1),
            "CreationDate": created.strftime(_DUMP_TIME),
            "LastActivityDate": (created + timedelta(days=rng.randrange(0, 400))).strftime(_DUMP_TIME),
        }
        if accepted is not None:
            question["AcceptedAnswerId"] = str(accepted)
        yield question
        for answer_id in answers:
            yield {
                "Id": str(answer_id),
                "PostTypeId": "2",
                "ParentId": str(next_id),
                "Score": str(int(rng.paretovariate(1.2)) - 1),
                "OwnerUserId": str(rng.randrange(1, 5000)),
                "Body": _answer_body(rng, product, verb),
                "LastActivityDate": (created + timedelta(hours=rng.randrange(1, 900))).strftime(_DUMP_TIME),
            }
        next_id += 1 + len(answers)


def write_posts_xml(path: Path, posts: int, seed: int = SEED) -> None:
    """A synthetic dump with `posts` rows; see the module docstring."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as file:
        file.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        for row in _rows(posts, rng):
            file.write("  <row " + " ".join(f"{k}={quoteattr(v)}" for k, v in row.items()) + " />\n")
        file.write("</posts>\n")


def measure(posts: int, workdir: Path) -> dict[str, Any]:
    """Generate and import one dump in this process (run it in a fresh one)."""
    from crowddesk.bot.server.database import init_schema
    from crowddesk.knowledge_base.ingest import ingest
    from crowddesk.knowledge_base.sources.importers import importer_for
    from crowddesk.knowledge_base.store import KnowledgeBaseStore
    from crowddesk.nlu.encoders import load_encoder
    from crowddesk.storage.engines import create_engine_for

    dump = workdir / f"Posts-{posts}.xml"
    write_posts_xml(dump, posts)
    database = create_engine_for(f"sqlite:///{workdir / f'kb-{posts}.db'}")
    init_schema(database)
    store = KnowledgeBaseStore(database)
    before = memory_mb()

    started = time.perf_counter()
    batch = importer_for(dump, "stackexchange", site_url=SITE_URL).read(dump)
    parsed = time.perf_counter()
    after_parse = memory_mb()
    encoder = load_encoder("all-MiniLM-L6-v2")
    loaded = time.perf_counter()
    summary = ingest(store, batch, encoder=encoder)
    done = time.perf_counter()
    again = ingest(store, importer_for(dump, "stackexchange", site_url=SITE_URL).read(dump), encoder=encoder)
    reimported = time.perf_counter()
    return {
        "posts": posts,
        "file_mb": round(dump.stat().st_size / 2**20, 1),
        "questions": summary.read,
        "added": summary.added,
        "merged": len(summary.merged),
        "skipped": dict(summary.skipped),
        "redactions": dict(summary.redactions),
        "parse_seconds": round(parsed - started, 2),
        "import_seconds": round((parsed - started) + (done - loaded), 2),
        "encoder_load_seconds": round(loaded - parsed, 2),
        "reimport_seconds": round(reimported - done, 2),
        "reimport_unchanged": again.unchanged,
        "rss_before_mb": before["rss_mb"],
        "peak_rss_after_parse_mb": after_parse["peak_rss_mb"],
        "peak_rss_mb": memory_mb()["peak_rss_mb"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=comma_separated_ints, default=[12_000, 60_000], help="numbers of posts (default 12000,60000)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "kb_import.json", help="JSON results file")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one size, in a subprocess
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.workdir)))
        return 0

    machine = accuracy_machine_info()
    rows = []
    with tempfile.TemporaryDirectory(prefix="crowddesk-kb-import-") as workdir:
        for size in args.sizes:
            command = [sys.executable, "-m", "benchmarks.kb_import", "--child", str(size), "--workdir", workdir]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
            print(f"{size} posts: {rows[-1]['import_seconds']} s", flush=True)
    print(
        format_table(
            [
                "posts",
                "file MB",
                "questions",
                "added",
                "merged",
                "skipped",
                "parse s",
                "import s",
                "re-import s",
                "peak RSS after parse MB",
                "peak RSS MB",
            ],
            [
                [
                    str(r["posts"]),
                    str(r["file_mb"]),
                    str(r["questions"]),
                    str(r["added"]),
                    str(r["merged"]),
                    str(sum(r["skipped"].values())),
                    str(r["parse_seconds"]),
                    str(r["import_seconds"]),
                    str(r["reimport_seconds"]),
                    str(r["rss_before_mb"]) + " → " + str(r["peak_rss_after_parse_mb"]),
                    str(r["peak_rss_mb"]),
                ]
                for r in rows
            ],
        )
    )
    path = write_results(
        "kb_import",
        {"benchmark": "kb_import", "machine": machine, "site_url": SITE_URL, "seed": SEED, "sizes": rows},
        args.out,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
