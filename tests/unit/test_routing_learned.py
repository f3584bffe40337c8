"""The learned router's pieces: features, the model file reader, the decision with its costs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from octoroute.enums import Importance, Tier
from octoroute.routing.features import (
    ASK_MATERIAL_CHARS,
    DEFAULT_SPEC,
    NAMESPACES,
    SPEC_LIMITS,
    ask_after_material,
    extract,
)
from octoroute.routing.learned import LearnedModel, least_cost, load_model, softmax
from octoroute.routing.metadata import ACCEPTS_OFFER, infer_metadata
from octoroute.routing.model_file import (
    ModelFileError,
    encode_model,
    read_model_file,
    shipped_model_path,
)
from octoroute.routing.signals import scan_text
from octoroute.routing.train import cost_matrix
from octoroute.wire.messages import Message
from tests.learned_models import SURE_DEEP, SURE_FAST, model_data, tiny_model, write_model

N = Importance.NORMAL


def features_of(*messages: Message) -> object:
    return extract(messages, infer_metadata(messages, N))


# --- features ---------------------------------------------------------------------------------


def test_a_greek_question_mark_is_a_question_in_the_shape_not_code_punctuation() -> None:
    question = extract([Message("user", "Τι ώρα είναι;")], infer_metadata([], N)).shape
    assert {"questions=1", "code=0", "ends_question"} <= set(question)
    code = extract([Message("user", "int x = 1;")], infer_metadata([], N)).shape
    assert "questions=0" in code
    assert "ends_question" not in code
    assert "code=0" not in code


@pytest.mark.parametrize("text", ["ما هي عاصمة كندا؟", "加拿大的首都是哪里？", "What time is it?"])
def test_every_script_s_question_mark_counts_in_the_shape(text: str) -> None:
    shape = extract([Message("user", text)], infer_metadata([], N)).shape
    assert {"questions=1", "ends_question"} <= set(shape)


def test_an_offer_in_arabic_is_an_offer() -> None:
    thread = [
        Message("user", "اكتب دالة بايثون لفرز قائمة"),
        Message("assistant", "```python\ndef sort(xs): ...\n```\nهل أضيف اختبارات؟"),
        Message("user", "نعم"),
    ]
    assert ACCEPTS_OFFER in infer_metadata(thread, N).signals  # a yes to the offer
    thread[2] = Message("user", "ماذا عن القوائم الفارغة؟")  # "what about empty lists?"
    assert "offer" in extract(thread, infer_metadata(thread, N)).cue
    thread[1] = Message("assistant", "```python\ndef sort(xs): ...\n```")
    assert "offer" not in extract(thread, infer_metadata(thread, N)).cue


LEASE = "\n".join(
    f"{n}. The Tenant shall pay the deposit, rent and any damages; the Landlord may sue for "
    f"breach of this tenancy agreement, and disputes go to arbitration (clause {n})."
    for n in range(1, 9)
)


def keys_of(text: str) -> dict[str, list[str]]:
    found = extract([Message("user", text)], infer_metadata([Message("user", text)], N))
    return {name: list(keys) for name, keys in found._asdict().items()}


def test_a_question_after_long_material_leads_and_cues_the_features() -> None:
    """Policy rule 4: the request is the question, not the pasted lease's legal words."""
    lease_alone = keys_of(LEASE)
    assert "stakes" in lease_alone["cue"]
    assert "ask_after" not in lease_alone["shape"]
    asked = keys_of(LEASE + "\n\nwhat day is rent due?")
    assert "ask_after" in asked["shape"]
    assert asked["lead"] == ["what", "what day"]
    assert "stakes" not in asked["cue"]
    # the words of the material still reach the model through the slice
    assert "tenant" in asked["w"]


def test_a_question_in_chinese_after_material_cues_by_substring() -> None:
    asked = keys_of(LEASE + "\n\n请用三点总结一下上面的内容")
    assert "ask_after" in asked["shape"]
    assert "summary" in asked["cue"]
    assert "stakes" not in asked["cue"]


@pytest.mark.parametrize(
    "text",
    [
        "what day is rent due?\n\n" + LEASE,  # the request comes first: read from the start
        LEASE[:300] + "\n\nwhat day is rent due?",  # too little material
        LEASE + "\n\n" + LEASE[:400],  # the last paragraph is no short question
        LEASE + " what day is rent due?",  # no paragraph of its own
        LEASE + "\n\n```\nrent: 1200\n```\nis this right?",  # a fence: more material
    ],
)
def test_only_a_short_last_paragraph_after_long_material_is_the_ask(text: str) -> None:
    assert ask_after_material(text) == "" or len(text) < ASK_MATERIAL_CHARS
    assert "ask_after" not in keys_of(text)["shape"]


def test_features_fill_every_namespace_of_a_threaded_request() -> None:
    thread = (
        Message("system", "You are a coding assistant for our Go services."),
        Message("user", "Why does my goroutine leak when the context is cancelled?"),
        Message("assistant", "Because the channel send blocks forever; use select with ctx."),
        Message("user", "and how would I test that?"),
    )
    features = extract(thread, infer_metadata(thread, N))
    assert features._fields == NAMESPACES
    assert "task=code" in features.sig
    assert {"followup", "rule=balanced"} <= set(features.sig)
    assert {"turns=2", "ends_question"} <= set(features.shape)  # turns: it is a follow-up
    assert "system" not in features.shape  # a system prompt says nothing of the tier
    assert "followup" in features.cue  # "and how would I ... that"
    assert features.lead == ["and", "and how"]
    assert features.w == ["and", "how", "would", "i", "test", "that"]
    assert features.w2 == []  # word pairs are off in the default spec
    assert features.c == []  # plain ASCII: its words are enough
    assert "goroutine" in features.pw
    assert "coding" in features.sw


def test_scripts_without_spaces_are_cut_into_character_ngrams() -> None:
    chinese = features_of(Message("user", "请证明根号二是无理数"))
    assert chinese.w == []  # type: ignore[attr-defined]
    assert {"证明根", "无理数"} <= set(chinese.c)  # type: ignore[attr-defined]
    german = features_of(Message("user", "Beweise, dass es unendlich viele Primzahlen gibt"))
    assert "primzahlen" in german.w  # type: ignore[attr-defined]
    assert german.c == []  # type: ignore[attr-defined]  # folded to ASCII: words suffice
    symbols = features_of(Message("user", "Démontrez que √2 est irrationnel — vite"))
    assert symbols.w == ["demontrez", "que", "2", "est", "irrationnel", "vite"]  # type: ignore[attr-defined]
    assert symbols.c == []  # type: ignore[attr-defined]
    russian = features_of(Message("user", "Докажите, что √2 иррационально"))
    assert russian.w == ["докажите", "что", "2", "иррационально"]  # type: ignore[attr-defined]
    japanese = features_of(Message("user", "√2が無理数であることを証明して"))
    assert "無理数" in japanese.c  # type: ignore[attr-defined]


def test_cues_are_the_keyword_groups_of_any_language() -> None:
    """The same group fires for the same request in English, German, Chinese and Korean, so a
    weight learned mostly from English rows carries over."""
    for text in (
        "Prove that there are infinitely many primes.",
        "Beweise, dass es unendlich viele Primzahlen gibt.",
        "请证明素数有无穷多个。",
        "소수가 무한히 많다는 것을 증명하세요",
    ):
        assert "proof" in features_of(Message("user", text)).cue, text  # type: ignore[attr-defined]
    assert "greet" in features_of(Message("user", "hi there!")).cue  # type: ignore[attr-defined]
    assert features_of(Message("user", "zorp blip quux")).cue == ()  # type: ignore[attr-defined]


def test_offer_marks_a_turn_that_answers_the_assistants_question() -> None:
    """A turn after an offer that does not accept it keeps its own words and the ``offer`` cue
    (one that accepts it is read as the offered work: test_routing_acceptance.py)."""
    asked = "Here is the parser.\n\nShall I write the tests for it too?"
    told = "Here is the parser. It handles every case in the spec."
    for answer, offered in ((asked, True), (told, False), (asked + "\n" + "x" * 400, False)):
        messages = [
            Message("user", "write a semver parser in Rust"),
            Message("assistant", answer),
            Message("user", "what about pre-release tags"),  # no yes: read as it stands
        ]
        assert ("offer" in features_of(*messages).cue) is offered  # type: ignore[attr-defined]


def test_the_turn_count_is_a_feature_only_of_a_turn_that_continues_the_thread() -> None:
    """A lookup at the end of a long thread stands alone: the thread's length must not push it
    up a tier, so only a follow-up carries ``turns``."""
    thread = [
        Message("user", "Why does my goroutine leak when the context is cancelled?"),
        Message("assistant", "Because the channel send blocks forever; use select with ctx."),
    ] * 3
    standalone = features_of(*thread, Message("user", "what's the capital of Peru?"))
    assert not any(key.startswith("turns=") for key in standalone.shape)  # type: ignore[attr-defined]
    followup = features_of(*thread, Message("user", "and how would I test that?"))
    assert "turns=3" in followup.shape  # type: ignore[attr-defined]  # 4+ user turns


def test_text_in_scripts_without_words_still_has_a_size() -> None:
    """Chinese, Japanese, Thai, Korean and Hindi give no words (``c`` and ``cue`` read them) but
    count one word per two characters, so a long question in them is not read as a short one."""
    chinese = features_of(Message("user", "请" + "详细解释这个问题" * 8))  # 65 characters
    assert chinese.w == []  # type: ignore[attr-defined]
    assert "words=6" in chinese.shape  # type: ignore[attr-defined]  # 32 words: 32-63
    korean = features_of(Message("user", "2의 제곱근이 무리수임을 증명하세요"))
    assert korean.w == ["2"]  # type: ignore[attr-defined]
    assert "words=4" in korean.shape  # type: ignore[attr-defined]  # 1 + 7: 8-15
    english = features_of(Message("user", "prove that the square root of two is irrational"))
    assert "words=4" in english.shape  # type: ignore[attr-defined]  # 9 words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("क्या आप मुझे बता सकते हैं कि दिल्ली में आज मौसम कैसा है?", 13),  # Hindi
        ("আজ ঢাকায় আবহাওয়া কেমন?", 4),  # Bengali
        ("இன்று சென்னையில் வானிலை எப்படி?", 4),  # Tamil
        ("ok, कल मिलते हैं", 4),  # Hinglish: an ASCII word and three Devanagari ones
    ],
)
def test_scripts_written_with_spaces_count_their_words(text: str, words: int) -> None:
    """Hindi, Bengali, Tamil... are matched by substring (their vowel signs split words), but
    they put spaces between words: a run of them is one word, in the features and the signals."""
    assert f"words={words.bit_length()}" in features_of(Message("user", text)).shape  # type: ignore[attr-defined]
    assert scan_text(text).words == words


def test_context_is_read_only_for_a_short_turn_that_continues_the_thread() -> None:
    thread = [
        Message("system", "You are a coding assistant."),
        Message("user", "Write a Rust function that parses a semver string."),
        Message("assistant", "```rust\nfn parse(s: &str) -> Version { todo!() }\n```"),
    ]
    for turn, continues in (
        ("and now add tests", True),
        ("thanks, that's all!", False),
        ("Please write a function that " + "parses the log line and " * 20, False),
    ):
        messages = [*thread, Message("user", turn)]
        features = extract(messages, infer_metadata(messages, N))
        assert ("followup" in features.sig) is continues
        assert bool(features.pw) is continues
        assert bool(features.sw) is continues


def test_features_are_bounded_whatever_the_size_of_the_request() -> None:
    huge = "word " * 400_000 + "\n\nWhat is the date of the meeting?"
    messages = [Message("user", huge)]
    features = extract(messages, infer_metadata(messages, N))
    limit = SPEC_LIMITS.head + SPEC_LIMITS.tail
    assert len(features.w) <= limit
    assert len(features.c) <= SPEC_LIMITS.char_chars
    assert "meeting" in features.w  # the tail, where the question after a paste is
    assert "chars=15" in features.shape  # the size is still seen


def test_features_fold_case_and_accents() -> None:
    features = features_of(Message("user", "Explícame la DIFERENCIA"))
    assert features.w == ["explicame", "la", "diferencia"]  # type: ignore[attr-defined]


def test_the_same_request_gets_the_same_decision_in_every_process(tmp_path: Path) -> None:
    """Keys are strings looked up in the file's tables, never ``hash()``es, which Python
    randomises per process: two processes with different hash seeds agree to the last bit."""
    script = textwrap.dedent(
        """
        from octoroute.enums import Importance
        from octoroute.routing.learned import load_model
        from octoroute.routing.metadata import infer_metadata
        from octoroute.wire.messages import Message
        messages = [Message("user", "Prove that the square root of 2 is irrational, rigorously.")]
        print(repr(load_model().predict(messages, infer_metadata(messages, Importance.NORMAL))))
        """
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "12345")
    }
    assert len(outputs) == 1


def test_the_shipped_model_loads_and_decides_without_numpy() -> None:
    """Run the decision in a process where importing numpy (or scipy) fails."""
    script = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("numpy", "scipy", "sklearn"):
                    raise ImportError(f"{name} is blocked in this test")
                return None
        sys.meta_path.insert(0, Block())
        from octoroute.enums import Importance
        from octoroute.routing.learned import load_model
        from octoroute.routing.metadata import infer_metadata
        from octoroute.wire.messages import Message
        model = load_model()
        for text in ("thanks, bye!", "Prove that there are infinitely many primes."):
            messages = [Message("user", text)]
            print(model.predict(messages, infer_metadata(messages, Importance.NORMAL)).tier.value)
        assert not any(name.split(".")[0] == "numpy" for name in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fast", "deep"]


# --- the decision ------------------------------------------------------------------------------


def test_softmax_temperature_sharpens_or_flattens() -> None:
    sharp = softmax((2.0, 0.0, 0.0), 0.5)
    flat = softmax((2.0, 0.0, 0.0), 4.0)
    assert sum(sharp) == pytest.approx(1.0)
    assert sharp[0] > softmax((2.0, 0.0, 0.0))[0] > flat[0] > 1 / 3


def test_cost_matrix_charges_under_routing_more() -> None:
    assert cost_matrix(3.0) == ((0.0, 1.0, 2.0), (3.0, 0.0, 1.0), (6.0, 3.0, 0.0))
    # fast for a balanced request costs less than balanced for a deep one; fast for deep, both
    assert cost_matrix(3.0, 1.5) == ((0.0, 1.0, 2.0), (1.5, 0.0, 1.0), (4.5, 3.0, 0.0))
    assert least_cost((0.65, 0.35, 0.0), cost_matrix(3.0, 1.5)) == 0
    assert least_cost((0.65, 0.35, 0.0), cost_matrix(3.0)) == 1


@pytest.mark.parametrize(
    ("probabilities", "under_cost", "chosen"),
    [
        ((0.6, 0.4, 0.0), 1.0, 0),  # symmetric costs: the most probable tier
        ((0.6, 0.4, 0.0), 3.0, 1),  # 0.4 of under-routing at 3 outweighs 0.6 of over-routing
        ((0.1, 0.7, 0.2), 3.0, 1),
        ((0.1, 0.6, 0.3), 3.0, 2),  # a 30 % chance that deep is needed is enough for deep
        ((1 / 3, 1 / 3, 1 / 3), 1.0, 1),  # a tie between fast and deep at equal cost: balanced
    ],
)
def test_the_decision_is_the_least_expected_cost(
    probabilities: tuple[float, float, float], under_cost: float, chosen: int
) -> None:
    assert least_cost(probabilities, cost_matrix(under_cost)) == chosen


def test_keys_the_model_does_not_know_are_ignored_but_still_scale_their_namespace() -> None:
    model = tiny_model(words={"hello": (1.0, 0.0, 0.0)})
    alone = model.scores(features_of(Message("user", "hello")))  # type: ignore[arg-type]
    among = model.scores(features_of(Message("user", "hello zorp blip quux")))  # type: ignore[arg-type]
    assert alone == (0.0, -1.0, -1.0)  # scores are relative to fast's
    assert among == (0.0, -0.5, -0.5)  # 1 / sqrt(4 words)


def test_word_pairs_are_read_from_their_text_form_when_the_spec_asks() -> None:
    pairs = {"w2": {"capital of": SURE_FAST}}
    with_pairs = tiny_model(weights=pairs, spec=DEFAULT_SPEC._replace(pairs=50))
    without = tiny_model(weights=pairs)
    messages = [Message("user", "capital of peru")]
    meta = infer_metadata(messages, N)
    assert with_pairs.scores(with_pairs.features(messages, meta))[1] < -3
    assert without.scores(without.features(messages, meta)) == (0.0, 0.0, 0.0)


def test_prediction_reports_the_chosen_tiers_probability() -> None:
    model = tiny_model(words={"prove": SURE_DEEP})
    messages = [Message("user", "prove")]
    prediction = model.predict(messages, infer_metadata(messages, N))
    assert prediction.tier is Tier.DEEP
    assert prediction.confidence == prediction.probabilities[2] > 0.99


# --- the model file ---------------------------------------------------------------------------


def test_a_model_file_round_trips_gzipped_or_plain(tmp_path: Path) -> None:
    data = model_data(words={"hello": SURE_FAST})
    for name, compress in (("m.json.gz", True), ("m.json", False)):
        path = write_model(tmp_path / name, data, compress=compress)
        assert read_model_file(path) == data


def test_encoding_is_byte_identical_and_timestamp_free() -> None:
    data = model_data(words={"b": SURE_FAST, "a": SURE_DEEP})
    first, second = encode_model(data), encode_model(data)
    assert first == second
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME
    text = gzip.decompress(first).decode()
    assert text.index('"a"') < text.index('"b"')  # sorted keys


def test_the_shipped_model_is_valid_and_small() -> None:
    path = shipped_model_path()
    assert path.name == "default.json.gz"
    assert path.stat().st_size < 2_000_000
    data = read_model_file(path)
    assert set(data.weights) <= set(NAMESPACES)
    assert data.training["rows"] >= 400
    assert isinstance(load_model(), LearnedModel)
    assert load_model() is load_model()  # indexed once


def _json_model(**changes: object) -> bytes:
    raw = json.loads(encode_model(model_data(words={"hello": SURE_FAST}), compress=False))
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "JSON is truncated or invalid"),
        (_json_model()[:-40], "JSON is truncated or invalid"),
        (gzip.compress(_json_model())[:-12], "gzip data is truncated or corrupt"),
        (b"\x1f\x8b" + b"\x00" * 30, "gzip data is truncated or corrupt"),
        (b'{"hello": "world"}', "not an octoroute routing model"),
        (b"[1, 2, 3]", "JSON is truncated or invalid"),
        (_json_model(version=2), "model file version 2, this octoroute reads version 1"),
        (_json_model(scheme="octoroute-features/1"), "trained with feature scheme"),
        (_json_model(tiers=["small", "medium", "large"]), "tiers"),
        (_json_model(temperature=0), "temperature 0"),
        (_json_model(temperature="hot"), "Expected `float`"),
        (_json_model(bias=[0, 0]), "bias"),
        (_json_model(cost=[[1, 1, 2], [3, 0, 1], [6, 3, 0]]), "cost[0][0] must be 0"),
        (_json_model(cost=[[0, -1, 2], [3, 0, 1], [6, 3, 0]]), "cost[0][1] = -1.0"),
        (_json_model(weights={"zz": {"a": [1, 2, 3]}}), "unknown feature namespaces ['zz']"),
        (_json_model(weights={"w": {"a": [1, 2]}}), "Expected `array` of length 3"),
        (_json_model(weights={"w": {"a": [1, 2, 1e7]}}), "weights of w:'a' are not numbers"),
        (_json_model(bias=[0, 0, -1e9]), "a bias is not a number"),
        (_json_model(spec={**DEFAULT_SPEC._asdict(), "head": 10**6}), "spec.head = 1000000"),
        (_json_model(spec={"head": 1}), "spec keys"),
        (_json_model(extra=1), "unknown field `extra`"),
    ],
)
def test_a_bad_model_file_is_refused_with_a_clear_message(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "model.json.gz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as caught:
        read_model_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert "\n" not in message


def test_a_missing_or_unreadable_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="file not found"):
        read_model_file(tmp_path / "nope.json")
    with pytest.raises(ModelFileError, match="is a directory"):
        read_model_file(tmp_path)


def test_a_rewritten_model_file_is_read_again(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.json", model_data(words={"hello": SURE_FAST}), compress=False)
    first = load_model(path)
    write_model(path, model_data(words={"hello": SURE_DEEP, "x": SURE_DEEP}), compress=False)
    second = load_model(path)
    assert first is not second
    messages = [Message("user", "hello")]
    assert second.predict(messages, infer_metadata(messages, N)).tier is Tier.DEEP
