"""The fast paths of the text scan give the answers of the plain ones.

The detectors skip probes behind one-character gates and stop counting syntax at
``SYNTAX_ENOUGH``; ``fold`` and ``tokenize`` replace ``str.translate`` by one ``str.replace`` per
distinct character. None of that may change what a text is found to contain, so each is compared
with the straightforward evaluation over the labelled dataset and over generated text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.routing import signals
from octoroute.routing.detectors import (
    CODE_DETECTORS,
    FILE_DETECTORS,
    SYNTAX,
    SYNTAX_ENOUGH,
    TEXT_DETECTORS,
    Detectors,
)
from octoroute.routing.evaluate import load_dataset
from octoroute.routing.lexicon import folding

DATASET: Final = Path(__file__).resolve().parent.parent / "data" / "routing_eval.jsonl"
DATASET_TEXTS: Final = sorted(
    {message.text() for row in load_dataset(DATASET) for message in row.messages}
)
CODE_ALPHABET: Final = (
    "abcdefXYZ_01239 \n\t.,;:(){}[]<>=+-*/!?`'\"#$%&|^~@\\éüß≡→你"
    "defclassfnletconstimportprintSELECTFROMErrorException"
)
"""Characters the probes look for, so generated text fires some of them."""

code_like = st.text(alphabet=CODE_ALPHABET, max_size=400) | st.lists(
    st.sampled_from(
        [
            "def f(x):",
            "class Foo(Base):",
            "let mut x: u32 = 1;",
            "int main() {\n",
            "\n}",
            "SELECT a FROM t",
            "x == y",
            "a -> b",
            "console.log(1)",
            "#include <stdio.h>",
            'File "a.py", line 3',
            "ValueError: bad",
            "```\n",
            "main.rs",
            " 2 + 3 ",
            "x = 4",
            "7 mod 3",
            "résumé",
            "ÉCOLE",
        ]
    ),
    max_size=12,
).map("\n".join)


def _same_answer(detectors: Detectors, text: str, capped: int) -> None:
    fast, plain = detectors.run(text), detectors.run_ungated(text)
    assert fast & ~capped == plain & ~capped
    assert fast & capped & ~plain == 0  # never a family that did not match
    if capped:  # counted as far as SYNTAX_ENOUGH, which is all a caller may read
        fast_count, plain_count = (fast & capped).bit_count(), (plain & capped).bit_count()
        assert min(fast_count, SYNTAX_ENOUGH) == min(plain_count, SYNTAX_ENOUGH)


def _check_all(text: str) -> None:
    framed = "\n" + text + "\n"
    _same_answer(CODE_DETECTORS, framed, SYNTAX)
    _same_answer(FILE_DETECTORS, framed, 0)
    _same_answer(TEXT_DETECTORS, signals.fold(text), 0)


def _fold_plainly(text: str) -> str:
    return text.lower().translate(folding._FOLD)


def _tokenize_plainly(folded: str) -> list[str]:
    """Maximal runs of letters and digits (``str.isalnum``), one character at a time."""
    words: list[str] = []
    current: list[str] = []
    for char in folded:
        if char.isalnum():
            current.append(char)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


@pytest.mark.parametrize("text", DATASET_TEXTS, ids=range(len(DATASET_TEXTS)))
def test_gated_detectors_agree_with_trying_every_probe_on_the_dataset(text: str) -> None:
    _check_all(text)


@settings(max_examples=300, deadline=None)
@given(code_like)
def test_gated_detectors_agree_with_trying_every_probe_on_generated_text(text: str) -> None:
    _check_all(text)


def test_syntax_is_counted_up_to_enough_and_no_further() -> None:
    module = "def f(x):\n    return x;\nlet y = 2\nint main() {\n}\nx == y\nconsole.log(1)\n"
    plain = CODE_DETECTORS.run_ungated("\n" + module + "\n") & SYNTAX
    assert plain.bit_count() > SYNTAX_ENOUGH  # the text has more kinds than are counted
    assert signals.scan_text(module).syntax == SYNTAX_ENOUGH
    assert signals.scan_text("def f(x):\n    pass").syntax == 1


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300) | code_like)
def test_fold_and_tokenize_agree_with_str_translate(text: str) -> None:
    folded = signals.fold(text)
    assert folded == _fold_plainly(text)
    if not folding.UNSPACED_RE.search(folded):
        assert signals.tokenize(folded, unspaced=False) == _tokenize_plainly(folded)


@pytest.mark.parametrize("text", DATASET_TEXTS[::7], ids=range(len(DATASET_TEXTS[::7])))
def test_fold_and_tokenize_agree_with_str_translate_on_the_dataset(text: str) -> None:
    folded = signals.fold(text)
    assert folded == _fold_plainly(text)
    if not folding.UNSPACED_RE.search(folded):
        assert signals.tokenize(folded, unspaced=False) == _tokenize_plainly(folded)


@pytest.mark.parametrize(
    "text",
    [
        "Suppose there are finitely many primes p1..pk; let N = (2 p1 ... pk)^2 + 1.",
        "First paragraph of a short answer.\n\nAnd a second one that asks: shall I go on?",
        "word " * 150,  # 750 characters, no paragraph: the head and the tail overlap
    ],
)
def test_a_short_context_message_is_read_once_not_as_two_overlapping_ends(text: str) -> None:
    # context messages are scanned for their instruction only (keyword_full=0); when the two
    # ends overlap, the whole text is that instruction and each word counts once
    assert signals.scan_text(text, keyword_full=0).words == signals.scan_text(text).words
