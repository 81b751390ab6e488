"""The channel benchmark's own path, tiny: REST and Twilio served by `crowddesk run`, every
reply counted at the fake Twilio API, and a results file with the numbers the README quotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import write_results
from benchmarks.channels import Settings, run
from crowddesk.bot.training.trainer import TrainResult

# Two or three `crowddesk run` servers start one after the other (and the demo bot may be trained first).
pytestmark = pytest.mark.timeout(600)

# One text per customer: a greeting, KB questions, and a hand-off (two replies: the notice and
# the queue position), so counting replies per text is exercised too.
TEXTS = [
    "hi",
    "my card still hasn't arrived",
    "/human_handoff",
    "how do I top up my account?",
    "what exchange rate do you use?",
    "/human_handoff",
    "why was my transfer declined?",
]


def test_every_reply_reaches_the_fake_platform_and_the_results_have_the_numbers(
    demo_project: Path, demo_training: TrainResult, action_server_url: str, tmp_path: Path
) -> None:
    settings = Settings(channels=("twilio",), warmup=1, latency_messages=3, messages=3, concurrency=2)
    results = run(
        settings,
        TEXTS,
        demo_project,
        tmp_path / "runs",
        model_dir=demo_training.model_dir,
        action_endpoint=action_server_url,
    )

    assert results["failed"] == {}
    runs = results["runs"]
    assert [run["channel"] for run in runs][:2] == ["rest", "twilio"]
    assert {run["channel"] for run in runs} == {"rest", "twilio"}  # plus twilio with its limit lifted, if it bound
    for measured in runs:
        assert measured["errors"] == 0, measured
        assert measured["replies_received"] == measured["replies_expected"], measured
        # Every timed message is answered (a hand-off twice: the notice, then the queue position),
        # as many times on Twilio as over REST.
        assert measured["replies_expected"] == runs[0]["replies_expected"] > 3 + 3
        for key in ("p50_ms", "p95_ms", "p99_ms", "messages_per_second", "replies_per_second"):
            assert measured[key] > 0, key
        assert measured["p50_ratio_to_rest"] is not None and measured["throughput_ratio_to_rest"] is not None
    twilio = runs[1]
    assert (twilio["rate_limit"], twilio["limit_lifted"]) == (1.0, False)
    assert twilio["limit_is_bottleneck"] in (True, False)

    written = json.loads(write_results("channels", results, tmp_path / "channels.json").read_text())
    assert written["machine"]["logical_cores"] >= 1 and written["started"]
    assert isinstance(written["load_average_1m_at_start"], float)
    assert written["settings"]["channels"] == ["rest", "twilio"]
