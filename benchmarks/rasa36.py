"""Rasa 3.6's default NLU pipeline (DIET) beside CrowdDesk on BANKING77: accuracy, training time
and `/model/parse` latency, both trained and served in the same run. Run by hand, never in CI.

    python -m benchmarks.rasa36 --rasa-python /tmp/rasa310/bin/python [--epochs 100]
        [--train-fraction 1] [--test-fraction 1] [--threads N]

Rasa 3.6 needs Python 3.8-3.10, so it runs from its own interpreter (`--rasa-python`: a venv with
`pip install rasa==3.6.21`). The benchmark writes one `data/nlu.yml` from BANKING77's train split
(Casanueva et al. 2020, CC BY 4.0) and two projects around it: Rasa's, with Rasa 3.6's default
pipeline (`rasa/engine/recipes/config_files/default_config.yml`), and CrowdDesk's, with no
config.yml, i.e. CrowdDesk's defaults. Each is trained with its own CLI (`rasa train nlu`,
`crowddesk train`; wall time, process start included), then served on 127.0.0.1 (`rasa run
--enable-api`, `crowddesk run`) and sent every test sentence on `/model/parse`, one at a time.

Accuracy is the top intent against the label. Rasa's FallbackClassifier (part of the default
pipeline) renames low-confidence predictions `nlu_fallback`; accuracy counts DIET's own top intent
(the first in `intent_ranking` that is not `nlu_fallback`), as CrowdDesk's accuracy is its argmax
before any threshold, and the share of fallbacks is reported beside it. DIET's epoch times and
last training metrics are read back from `rasa train`'s progress bar, so that a run with fewer
epochs than the default still says what the default 100 would cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import RESULTS_DIR, accuracy_machine_info, write_results
from benchmarks.baselines import accuracy, macro_f1
from benchmarks.datasets import LabelledTexts, default_data_dir, load_banking77, stratified_holdout
from benchmarks.latency import (
    crowddesk_command,
    latency_summary,
    process_cpu_seconds,
    start_http_server,
)
from benchmarks.serving import API_HEADERS, API_TOKEN
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.server.action_server import stop
from crowddesk.bot.server.api_access import TOKEN_ENV
from tests.demo_bot import free_port

RASA_VERSION = "3.6.21"
FALLBACK_INTENT = "nlu_fallback"
SUBSET_SEED = 0
WARMUP_PARSES = 20
# What TensorFlow (Rasa reads these two) and PyTorch (OpenMP) take as their compute threads.
RASA_THREAD_VARIABLES = ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS")
CROWDDESK_THREAD_VARIABLES = ("OMP_NUM_THREADS",)


def thread_limits(threads: int | None, variables: Sequence[str]) -> dict[str, str]:
    """Environment that caps a system's compute threads (nothing: the libraries' defaults)."""
    return {} if threads is None else {name: str(threads) for name in variables}


def rasa_config(epochs: int) -> str:
    """Rasa 3.6's default NLU pipeline, verbatim except DIET's `epochs`."""
    return f"""\
# Rasa 3.6.21's default pipeline (rasa/engine/recipes/config_files/default_config.yml).
recipe: default.v1
assistant_id: crowddesk-benchmark
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: "char_wb"
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    constrain_similarities: true
  - name: EntitySynonymMapper
  - name: ResponseSelector
    epochs: 100
    constrain_similarities: true
  - name: FallbackClassifier
    threshold: 0.3
    ambiguity_threshold: 0.1
"""


def one_line(text: str) -> str:
    # 13 BANKING77 texts hold newlines; a Rasa example is one line of nlu.yml.
    return re.sub(r"\s+", " ", text).strip()


def nlu_yaml(data: LabelledTexts) -> str:
    """Rasa 3.x `nlu.yml`, which both Rasa and CrowdDesk read."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(data.texts, data.labels):
        by_intent[label].append(one_line(text))
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in by_intent[intent]]
    return "\n".join(lines) + "\n"


def domain_yaml(intents: Sequence[str]) -> str:
    return 'version: "3.1"\nintents:\n' + "".join(f"  - {intent}\n" for intent in intents)


def write_project(root: Path, nlu: str, domain: str, config: str | None) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "nlu.yml").write_text(nlu, encoding="utf-8")
    (root / "domain.yml").write_text(domain, encoding="utf-8")
    if config is not None:
        (root / "config.yml").write_text(config, encoding="utf-8")
    return root


def timed_run(command: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run a training command to the end; its wall time in seconds."""
    start = time.perf_counter()
    with log.open("wb") as out:
        result = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} ... failed (log: {log}):\n{log.read_text(errors='replace')[-2000:]}"
        )
    return seconds


# One tqdm update of DIET's epoch loop: "Epochs:  20%|##  | 20/100 [43:20<2:53:20, 130.0s/it,
# t_loss=1.2, i_acc=0.98]" (no metrics before the first epoch ends).
EPOCH_BAR = re.compile(r"Epochs:[^|]*\|[^|]*\|\s*(\d+)/\d+ \[([\d:]+)<[^\]]*?(?:s/it|it/s)(?:, ([^\]]*))?\]")


def clock_seconds(clock: str) -> int:
    """tqdm's elapsed "MM:SS" or "H:MM:SS" in seconds."""
    seconds = 0
    for part in clock.split(":"):
        seconds = 60 * seconds + int(part)
    return seconds


def diet_epoch_loop(train_log: Path) -> dict[str, Any]:
    """DIET's epoch loop read back from `rasa train`'s progress bar: epoch times, final metrics."""
    text = train_log.read_text(errors="replace")
    start = text.index("Starting to train component 'DIETClassifier'")
    end = text.index("Finished training component 'DIETClassifier'", start)
    elapsed: dict[int, int] = {}
    metrics: dict[str, float] = {}
    for done, clock, postfix in EPOCH_BAR.findall(text[start:end]):
        elapsed[int(done)] = clock_seconds(clock)
        if postfix:
            metrics = {key: float(value) for key, value in (item.split("=", 1) for item in postfix.split(", "))}
    epochs = max(elapsed)
    # The first epoch also traces TensorFlow's graphs; later ones are the steady per-epoch cost.
    later = (elapsed[epochs] - elapsed[1]) / (epochs - 1) if epochs > 1 else float(elapsed[1])
    return {
        "epochs": epochs,
        "loop_seconds": elapsed[epochs],
        "first_epoch_seconds": elapsed[1],
        "later_epoch_seconds": round(later, 1),
        "last_epoch_training_metrics": metrics,
    }


def rasa_top_intent(parse: dict[str, Any]) -> str:
    """DIET's prediction: the best-ranked intent that is not the FallbackClassifier's."""
    return next(
        (entry["name"] for entry in parse.get("intent_ranking") or [] if entry["name"] != FALLBACK_INTENT),
        parse["intent"]["name"],
    )


def crowddesk_top_intent(parse: dict[str, Any]) -> str:
    return str(parse["intent"]["name"])


def score(
    url: str,
    server_pid: int,
    test: LabelledTexts,
    warmup: Sequence[str],
    top_intent: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Send every test text to `/model/parse` one at a time: accuracy, latency, server CPU.

    Both servers get CrowdDesk's API token header; Rasa, started without auth, ignores it."""
    predicted: list[str] = []
    seconds: list[float] = []
    fallbacks = 0
    with httpx.Client(timeout=60.0, headers=API_HEADERS) as client:
        for text in warmup:  # first parses build TensorFlow graphs / page in weights
            client.post(url, json={"text": text}).raise_for_status()
        cpu_start = process_cpu_seconds(server_pid)
        for text in test.texts:
            start = time.perf_counter()
            response = client.post(url, json={"text": text})
            seconds.append(time.perf_counter() - start)
            response.raise_for_status()
            parse = response.json()
            fallbacks += int(parse["intent"]["name"] == FALLBACK_INTENT)
            predicted.append(top_intent(parse))
        server_cpu = process_cpu_seconds(server_pid) - cpu_start
    top = np.array(predicted, dtype=object)
    return {
        "accuracy": accuracy(top, test.labels),
        "macro_f1": macro_f1(top, test.labels),
        "fallback_share": round(fallbacks / len(test), 4),
        "parse": {
            **latency_summary(seconds),
            "server_cpu_ms_per_parse": round(1000 * server_cpu / len(test), 2),
        },
    }


def serve_and_score(
    command: Sequence[str],
    port: int,
    health_path: str,
    log: Path,
    test: LabelledTexts,
    warmup: Sequence[str],
    top_intent: Callable[[dict[str, Any]], str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    server = start_http_server(command, base + health_path, log, cwd=cwd, env=env)
    try:
        return score(f"{base}/model/parse", server.pid, test, warmup, top_intent)
    finally:
        stop(server)


def check_rasa(rasa_python: Path) -> str:
    if not rasa_python.is_file():
        raise SystemExit(f"--rasa-python {rasa_python}: no such file")
    probe = subprocess.run(
        [str(rasa_python), "-c", "import importlib.metadata as m; print(m.version('rasa'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise SystemExit(f"--rasa-python {rasa_python} cannot import rasa; pip install rasa=={RASA_VERSION} into it")
    version = probe.stdout.strip()
    if version != RASA_VERSION:
        print(f"note: {rasa_python} has rasa {version}, not {RASA_VERSION}", file=sys.stderr)
    return version


def stratified_share(data: LabelledTexts, fraction: float) -> LabelledTexts:
    """All of `data`, or a stratified `fraction` of every intent (seed 0)."""
    if fraction == 1.0:
        return data
    return stratified_holdout(data, fraction, SUBSET_SEED)[1]


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rasa_version = check_rasa(args.rasa_python)
    machine = {**accuracy_machine_info(), "rasa": rasa_version}
    data = load_banking77(args.data)
    train = stratified_share(data.train, args.train_fraction)
    test = stratified_share(data.test, args.test_fraction)
    warmup = train.texts[:WARMUP_PARSES]
    nlu = nlu_yaml(train)
    domain = domain_yaml(sorted(set(train.labels)))
    rasa_dir = write_project(workdir / "rasa", nlu, domain, rasa_config(args.epochs))
    crowddesk_dir = write_project(workdir / "crowddesk", nlu, domain, None)
    rasa = [str(args.rasa_python), "-m", "rasa"]
    # No telemetry or update checks from Rasa; TensorFlow's C++ info lines only fill the log.
    rasa_env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **thread_limits(args.threads, RASA_THREAD_VARIABLES),
    }
    crowddesk_env = {
        **os.environ,
        TOKEN_ENV: API_TOKEN,
        "CROWDDESK_DATABASE_URL": f"sqlite:///{workdir / 'crowddesk.db'}",
        **thread_limits(args.threads, CROWDDESK_THREAD_VARIABLES),
    }

    print(f"training Rasa {rasa_version} (DIET, {args.epochs} epochs) on {len(train)} examples ...", flush=True)
    rasa_train = timed_run(
        [
            *rasa,
            "train",
            "nlu",
            "--config",
            "config.yml",
            "--nlu",
            "data/nlu.yml",
            "--out",
            "models",
            "--fixed-model-name",
            "banking77",
        ],
        rasa_dir,
        rasa_env,
        workdir / "rasa-train.log",
    )
    print(f"training CrowdDesk on {len(train)} examples ...", flush=True)
    crowddesk_train = timed_run(
        crowddesk_command("train", "--project", str(crowddesk_dir)),
        crowddesk_dir,
        crowddesk_env,
        workdir / "crowddesk-train.log",
    )

    print(f"scoring Rasa on {len(test)} test sentences via /model/parse ...", flush=True)
    port = free_port()
    rasa_scores = serve_and_score(
        [
            *rasa,
            "run",
            "--enable-api",
            "--model",
            "models/banking77.tar.gz",
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        port,
        "/status",
        workdir / "rasa-run.log",
        test,
        warmup,
        rasa_top_intent,
        cwd=rasa_dir,
        env=rasa_env,
    )
    print(f"scoring CrowdDesk on {len(test)} test sentences via /model/parse ...", flush=True)
    port = free_port()
    crowddesk_scores = serve_and_score(
        crowddesk_command("run", "--project", str(crowddesk_dir), "--port", str(port)),
        port,
        "/health",
        workdir / "crowddesk-run.log",
        test,
        warmup,
        crowddesk_top_intent,
        env=crowddesk_env,
    )
    reference = json.loads(args.banking77_results.read_text(encoding="utf-8"))
    return {
        "benchmark": "rasa36",
        "machine": machine,
        "settings": {
            "train_examples": len(train),
            "train_fraction": args.train_fraction,
            "test_examples": len(test),
            "test_fraction": args.test_fraction,
            "rasa_diet_epochs": args.epochs,
            "compute_threads": args.threads or "library defaults",
            "rasa_pipeline": "Rasa 3.6 default (see rasa_config in benchmarks/rasa36.py)",
            "crowddesk_config": "defaults (no config.yml)",
            "parse_requests": f"sequential, one keep-alive connection, after {WARMUP_PARSES} untimed warm-up parses",
        },
        "results": {
            "Rasa 3.6 (DIET)": {
                **rasa_scores,
                "train_seconds": round(rasa_train, 1),
                "diet_epoch_loop": diet_epoch_loop(workdir / "rasa-train.log"),
            },
            "CrowdDesk": {**crowddesk_scores, "train_seconds": round(crowddesk_train, 1)},
        },
        "crowddesk_banking77_benchmark": reference["results"]["CrowdDesk"],
    }


def print_table(results: dict[str, Any]) -> None:
    rows = [
        [
            name,
            f"{r['accuracy']:.2%}",
            f"{r['macro_f1']:.2%}",
            f"{r['fallback_share']:.1%}",
            f"{r['train_seconds']:.0f}",
            f"{r['parse']['p50_ms']:.1f}",
            f"{r['parse']['p99_ms']:.1f}",
            f"{r['parse']['server_cpu_ms_per_parse']:.1f}",
        ]
        for name, r in results["results"].items()
    ]
    reference = results["crowddesk_banking77_benchmark"]
    rows.append(
        [
            "CrowdDesk (benchmarks.banking77, full train)",
            f"{reference['accuracy']:.2%}",
            f"{reference['macro_f1']:.2%}",
            "",
            f"{reference['train_seconds']:.0f}",
            "",
            "",
            "",
        ]
    )
    print(
        format_table(
            [
                "system",
                "accuracy",
                "macro-F1",
                "fallback",
                "train s",
                "parse p50 ms",
                "parse p99 ms",
                "server CPU ms/parse",
            ],
            rows,
        )
    )


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rasa-python", type=Path, required=True, help=f"a Python 3.10 interpreter with rasa=={RASA_VERSION} installed"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir("banking77"),
        help="BANKING77 folder; default ../shared/datasets/banking77",
    )
    parser.add_argument("--epochs", type=int, default=100, help="DIET epochs (Rasa's default, 100)")
    parser.add_argument(
        "--train-fraction",
        type=fraction,
        default=1.0,
        help="train both systems on this stratified share of train.csv (seed 0; default 1: all of it)",
    )
    parser.add_argument(
        "--test-fraction",
        type=fraction,
        default=1.0,
        help="score this stratified share of test.csv (seed 0; default 1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="cap both systems' compute threads (TensorFlow's intra/inter-op, "
        "PyTorch's OpenMP); default: each library's own",
    )
    parser.add_argument(
        "--banking77-results",
        type=Path,
        default=RESULTS_DIR / "banking77.json",
        help="CrowdDesk's numbers from `python -m benchmarks.banking77`",
    )
    parser.add_argument("--keep", type=Path, help="keep the projects, models and logs in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "rasa36.json")
    args = parser.parse_args(argv)
    if args.epochs < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--epochs and --threads must be >= 1")

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        results = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="crowddesk-rasa36-") as workdir:
            results = run(args, Path(workdir))
    print_table(results)
    print(f"wrote {write_results('rasa36', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
