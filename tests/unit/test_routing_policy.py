"""The labelling policy's decided edge cases, routed by the shipped learned model.

The table is our own copy of the requests in the policy's "edge cases, decided" (docs/routing.md,
the labelling policy); none of them is a training row. Each must land in its acceptable set.
The shipped model must also still be the one its training data makes: the features digest in
the file is compared with the training files featurised by today's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from octoroute.enums import Importance, Tier
from octoroute.routing.evaluate import load_dataset
from octoroute.routing.learned import load_model
from octoroute.routing.metadata import infer_metadata
from octoroute.routing.model_file import read_model_file, shipped_model_path
from octoroute.routing.train import features_digest, prepare
from octoroute.wire.messages import Message

ROOT: Final = Path(__file__).resolve().parents[2]
TRAINING: Final = sorted((ROOT / "data" / "routing" / "train").glob("*.jsonl"))
RETRAIN: Final = (
    "octoroute train data/routing/train/*.jsonl -o src/octoroute/routing/models/default.json.gz"
)

F, B, D = Tier.FAST, Tier.BALANCED, Tier.DEEP

RACE_THREAD: Final = [
    Message("system", "You are a senior Go engineer helping with concurrency bugs."),
    *[
        Message(
            "user" if turn % 2 == 0 else "assistant",
            (
                f"Step {turn}: the counter in worker {turn} is incremented from two goroutines "
                "without a mutex and the race detector reports a data race on the shared map."
            )
            if turn % 2 == 0
            else (
                f"For step {turn}, guard the map with a sync.Mutex or use sync.Map; the race "
                "happens because both goroutines write without a happens-before edge."
            ),
        )
        for turn in range(18)
    ],
    Message("user", "perfect, thanks!"),
]
"""20 messages about a race condition; the latest turn is a sign-off."""

CODING_THREAD: Final = [
    Message("user", "Write a Python function that parses ISO 8601 dates from a log line."),
    Message(
        "assistant",
        "```python\nfrom datetime import datetime\n\ndef parse_stamp(line: str) -> datetime:\n"
        "    return datetime.fromisoformat(line.split()[0])\n```\nIt takes the first field.",
    ),
    Message("user", "and how would I test that?"),
]

REPORT: Final = " ".join(
    f"In quarter {n % 4 + 1} the regional team reported that revenue from the northern accounts "
    f"grew while churn in the mid-market segment stayed flat at {n % 7 + 2} percent."
    for n in range(160)
)
"""About 4,000 words of pasted report."""

INCIDENT: Final = (
    "Our API p99 tripled after a deploy; here are the graphs, logs and config. p50 is unchanged "
    "at 40 ms but p99 went from 180 ms to 560 ms right after v2.14 went out, only on the write "
    "endpoints. CPU on the API pods is flat at 35 %, but Postgres shows lock waits on "
    "`orders` and the connection pool saturates every few minutes.\n\n"
    "```\n2026-11-03T10:14:02Z WARN pool exhausted: 50/50 in use, 212 waiting\n"
    "2026-11-03T10:14:02Z INFO POST /orders 201 612ms\n"
    "2026-11-03T10:14:03Z WARN slow query: UPDATE inventory SET qty = qty - 1 ... 480ms\n```\n\n"
    "```yaml\ndb:\n  pool_size: 50\n  statement_timeout: 5s\nworkers: 8\nretry:\n  attempts: 5\n"
    "  backoff: 0ms\n```\nThe deploy also added a retry wrapper around the order write. "
    "What is going on and what should we change?"
)


def case(
    name: str, messages: list[Message], acceptable: tuple[Tier, ...], *marks: pytest.MarkDecorator
) -> object:
    """One edge case: its conversation and acceptable tiers (the policy's tier first)."""
    return pytest.param(messages, acceptable, id=name, marks=marks)


CASES: Final = [
    case("enumerate lookup", [Message("user", "what does `enumerate` return in Python?")], (F,)),
    case("one line please", [Message("user", "set vs frozenset, one line please")], (F, B)),
    case(
        "routine function",
        [Message("user", "Write a function that merges two sorted lists")],
        (B, F),
    ),
    case("urgent trivia", [Message("user", "URGENT: what's the capital of Australia?")], (F,)),
    case("analyze trivial", [Message("user", "Analyze this: is 17 prime?")], (F,)),
    case("sign-off after a hard thread", RACE_THREAD, (F,)),
    case("continuation of a coding thread", CODING_THREAD, (B,)),
    case(
        "summary of a long report",
        [Message("user", f"Summarize this 4,000-word report in 5 bullets:\n\n{REPORT}")],
        (B,),
    ),
    case(
        "textbook proof",
        [Message("user", "Prove that every tree with n vertices has n − 1 edges")],
        (D, B),
    ),
    case(
        "strict sonnet",
        [Message("user", "Write a sonnet in strict iambic pentameter about entropy")],
        (D,),
    ),
    case(
        "personal poem",
        [Message("user", "Write a short poem for a nurse colleague retiring after 30 years")],
        (B,),
    ),
    case("multi-factor incident", [Message("user", INCIDENT)], (D,)),
    # "A question in any language: as the same question in English"
    case("German urgent trivia", [Message("user", "DRINGEND: Was ist die Hauptstadt von Australien?")], (F,)),
    case("Spanish enumerate", [Message("user", "¿qué devuelve `enumerate` en Python?")], (F,)),
    case(
        "French proof",
        [Message("user", "Démontrez que tout arbre à n sommets possède n − 1 arêtes")],
        (D, B),
    ),
    case(
        "German sonnet",
        [Message("user", "Schreibe ein Sonett in strengem jambischem Pentameter über Entropie")],
        (D,),
    ),
    case("Spanish sign-off", [*RACE_THREAD[:-1], Message("user", "¡perfecto, gracias!")], (F,)),
]  # fmt: skip


@pytest.mark.parametrize(("messages", "acceptable"), CASES)
def test_the_policys_edge_cases_route_as_decided(
    messages: list[Message], acceptable: tuple[Tier, ...]
) -> None:
    model = load_model()
    prediction = model.predict(messages, infer_metadata(messages, Importance.NORMAL))
    assert prediction.tier in acceptable, (
        f"chose {prediction.tier} (p = {[round(p, 2) for p in prediction.probabilities]}), "
        f"the policy says {[str(tier) for tier in acceptable]}"
    )


def test_the_shipped_model_is_trained_on_todays_training_files_and_features() -> None:
    """A change to the training files, the features or the signals they read (the lexicon)
    changes the digest: then the shipped model is stale and must be trained again."""
    data = read_model_file(shipped_model_path())
    assert data.training["files"] == [path.name for path in TRAINING], RETRAIN
    rows = [row for path in TRAINING for row in load_dataset(path)]
    assert data.training["rows"] == len(rows), RETRAIN
    assert data.training["features_digest"] == features_digest(
        prepare(rows, data.feature_spec())
    ), f"the shipped model was trained on other features; run: {RETRAIN}"
