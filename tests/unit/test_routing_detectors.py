"""The fast paths of the text scan give the answers of the plain ones.

The detectors skip probes behind one-character gates and stop counting syntax at
``SYNTAX_ENOUGH``; ``fold`` and ``tokenize`` replace ``str.translate`` by one ``str.replace`` per
distinct character. None of that may change what a text is found to contain, so each is compared
with the straightforward evaluation over the labelled dataset and over generated text.
"""

from __future__ import annotations

import itertools
import re
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
from octoroute.routing.lexicon import folding, length

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


# --- the length target's number and the tokenizer's ASCII path beyond ASCII ---------------------

_OLD_NUMBER: Final = r"(?<!\d)(\d{1,3}(?:[,.'\u00a0\u202f\u2009 ]\d{3})+|\d{1,6})(?:[.,](\d))?"
"""The number as it was written before it was made to start with ``\\d`` (the reference)."""
LENGTH_ALPHABET: Final = (
    "0123456789 ,.'\u00a0\u202f\u2009-kK万千字語文단어٣٤१२１²½ wordsmtpalbrésWört"
)
length_like = st.text(alphabet=LENGTH_ALPHABET, max_size=120) | st.lists(
    st.sampled_from(
        ["2000 words", "2,000-word", "1.5k words", "500 Wörter", "800字", "2 000 mots", "3 300",
         "1万字", "12345678 words", "٣٠٠ كلمة", "x9 words", "1.2.3 words", " 500 palabras", "k"]
    ),
    max_size=8,
).map(" ".join)  # fmt: skip


def _old_targets(folded: str) -> list[tuple[str | None, ...]]:
    """Every match of the length pattern with the old number in front, as groups."""
    pattern = signals.LENGTH._pattern
    assert pattern is not None
    old = re.compile(_OLD_NUMBER + pattern.pattern[len(length._NUMBER) :])
    return [(m.group(0), *m.groups()) for m in old.finditer(folded)]


def _new_targets(folded: str) -> list[tuple[str | None, ...]]:
    pattern = signals.LENGTH._pattern
    assert pattern is not None
    return [(m.group(0), *m.groups()) for m in pattern.finditer(folded)]


@settings(max_examples=500, deadline=None)
@given(length_like)
def test_the_length_pattern_matches_as_the_look_behind_first_one_did(text: str) -> None:
    folded = signals.fold(text)
    assert _new_targets(folded) == _old_targets(folded)


@pytest.mark.parametrize("text", DATASET_TEXTS[::3], ids=range(len(DATASET_TEXTS[::3])))
def test_the_length_pattern_matches_as_before_on_the_dataset(text: str) -> None:
    folded = signals.fold(text)
    assert _new_targets(folded) == _old_targets(folded)


def _words_by_regex(folded: str) -> list[str]:
    return folding._WORD_RE.findall(folded)


BEYOND_ASCII: Final = "★—“”’…«»§°•→≡±×÷\u00a0\u2009\u200b\ufeff\ud800\udfff字語단éжΣ²½٣_\x1c\x85"
"""Separators and word characters beyond ASCII (a lone surrogate too: JSON can carry one)."""


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(BEYOND_ASCII + "ab12 .,_-\n")), max_size=200))
def test_tokenize_beyond_ascii_agrees_with_the_word_regex(text: str) -> None:
    folded = signals.fold(text)
    assert signals.tokenize(folded, unspaced=True) == _words_by_regex(folded)
    assert folding.beyond_ascii(folded) == "".join(c for c in folded if not c.isascii())


def test_every_character_is_a_word_character_for_the_regex_exactly_when_isalnum_says() -> None:
    # the ASCII path turns every character beyond ASCII into a separator when the regex finds
    # no word character among them: that relies on the regex's idea of a word character
    unspaced = folding.UNSPACED_RE
    for code in range(0x80, 0x110000):
        char = chr(code)
        is_word = char.isalnum() and not unspaced.match(char)
        assert (folding._WORD_RE.fullmatch(char) is not None) == is_word, hex(code)


# --- the code-only scan of context messages -----------------------------------------------------


def _same_code_fields(text: str, keyword_full: int) -> None:
    full = signals.scan_text(text, keyword_full=keyword_full)
    code = signals.scan_code(text, keyword_full=keyword_full)
    for field in signals.CodeScan._fields[1:]:
        assert getattr(code, field) == getattr(full, field), field
    expected = {g: n for g, n in full.evidence.counts.items() if g in signals.CODE_GROUPS}
    assert dict(code.evidence.counts) == expected


@pytest.mark.parametrize("text", DATASET_TEXTS, ids=range(len(DATASET_TEXTS)))
def test_the_code_scan_finds_what_the_full_scan_finds_on_the_dataset(text: str) -> None:
    _same_code_fields(text, signals.KEYWORD_FULL_CHARS)
    _same_code_fields(text, 0)


@settings(max_examples=300, deadline=None)
@given(code_like | st.text(max_size=400), st.sampled_from([0, 40, signals.KEYWORD_FULL_CHARS]))
def test_the_code_scan_finds_what_the_full_scan_finds_on_generated_text(
    text: str, keyword_full: int
) -> None:
    _same_code_fields(text, keyword_full)


# --- characters beyond ASCII and substring phrases ----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(BEYOND_ASCII + "ab12 .,_-\n∑≤ΣÉ")), max_size=200))
def test_a_search_of_the_characters_beyond_ascii_finds_what_a_search_of_the_text_finds(
    text: str,
) -> None:
    searchable = folding.searchable_beyond_ascii(text)
    for pattern in (folding.UNSPACED_RE, folding._FOLDED_RE, signals._MATH_SYMBOL_RE):
        assert pattern.findall(searchable) == pattern.findall(text)


UNSPACED_TEXTS: Final = [text for text in DATASET_TEXTS if folding.UNSPACED_RE.search(text)]
unspaced_like = st.lists(
    st.sampled_from(
        [*sorted({key for key, _ in signals.LEXICON._substrings}), "的", "a", " ", "字"]
    ),
    max_size=20,
).map("".join)


def _substring_counts(folded: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    beyond = folding.searchable_beyond_ascii(folded)
    signals.LEXICON._scan_unspaced(folded, beyond, counts, {})
    return counts


def _substring_counts_plainly(folded: str) -> dict[str, int]:
    """Every substring phrase looked for in the whole text."""
    counts: dict[str, int] = {}
    for key, group in signals.LEXICON._substrings:
        if key in folded:
            counts[group] = counts.get(group, 0) + 1
    return counts


def _unspaced_evidence(folded: str) -> tuple[dict[str, int], dict[str, int], int, int]:
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    beyond = folding.searchable_beyond_ascii(folded)
    chars, covered = signals.LEXICON._scan_unspaced(folded, beyond, counts, first)
    return counts, first, chars, covered


def _unspaced_evidence_plainly(folded: str) -> tuple[dict[str, int], dict[str, int], int, int]:
    """One ``str.find`` per substring phrase: its first place for the positional groups, and
    successive ones from the end of the last for the characters conversational phrases cover."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    chars = len(folding.UNSPACED_RE.findall(folded))
    covered: set[int] = set()
    for key, group in signals.LEXICON._substrings:
        at = folded.find(key)
        if at < 0:
            continue
        counts[group] = counts.get(group, 0) + 1
        if group in signals.POSITIONAL:
            first[group] = min(first.get(group, at), at)
        if chars <= signals.COVERED_MAX_TOKENS and group in signals.CONVERSATIONAL:
            while at >= 0:
                covered.update(range(at, at + len(key)))
                at = folded.find(key, at + len(key))
    unspaced_covered = sum(1 for at in covered if folding.UNSPACED_RE.match(folded, at))
    return counts, first, chars, unspaced_covered


def _phrases_in_one_pass(lexicon: signals.Lexicon, tokens: list[str]) -> tuple[object, ...]:
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    lexicon._scan_phrases(tokens, counts, first)
    return counts, first


def _phrases_pair_by_pair(lexicon: signals.Lexicon, tokens: list[str]) -> tuple[object, ...]:
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    hits = lexicon._pair_keys.intersection(itertools.pairwise(tokens))
    lexicon._scan_pairs(tokens, hits, counts, first, False)
    return counts, first


def _check_phrases(text: str) -> None:
    folded = signals.fold(text)
    tokens = signals.tokenize(folded, unspaced=folding.UNSPACED_RE.search(folded) is not None)
    for lexicon in (signals.LEXICON, signals.CODE_LEXICON):
        assert _phrases_in_one_pass(lexicon, tokens) == _phrases_pair_by_pair(lexicon, tokens)


PHRASE_WORDS: Final = sorted(
    {word for key in signals.LEXICON._phrase_index for word in key.split(" ")}
    | {word for pair in signals.LEXICON._phrase_pairs for word in pair}
)
phrase_like = st.lists(
    st.sampled_from([*PHRASE_WORDS[:400], "what", "is", "the", "how", "do", "i", "x", "1"]),
    max_size=120,
).map(" ".join) | st.lists(st.sampled_from(sorted(signals.LEXICON._phrase_index)), max_size=30).map(
    ", ".join
)


@pytest.mark.parametrize("text", DATASET_TEXTS, ids=range(len(DATASET_TEXTS)))
def test_one_pass_over_longer_phrases_counts_as_pair_by_pair_on_the_dataset(text: str) -> None:
    _check_phrases(text)


@settings(max_examples=300, deadline=None)
@given(phrase_like)
def test_one_pass_over_longer_phrases_counts_as_pair_by_pair_on_generated_text(text: str) -> None:
    # repeated phrases, phrases sharing their first two words, and a longer phrase away from the
    # first place its pair occurs (where the pair-by-pair scan of a long text does not count it)
    _check_phrases(text)


SURROGATE_TEXTS: Final = [
    "x = foo(1); " * 20 + "\ud800 import os\n" + "```\nTraceback (most recent call last)",
    "谢谢\ud800哈哈哈 " * 3 + "你好",
    " ".join(["how do i"] * 40) + "\udfff what is the difference between",
]
"""Long enough for the compiled matchers, which read UTF-8 and so refuse a lone surrogate."""


@pytest.mark.parametrize("text", SURROGATE_TEXTS, ids=range(len(SURROGATE_TEXTS)))
def test_a_lone_surrogate_is_read_by_the_one_pass_matchers_as_by_the_plain_searches(
    text: str,
) -> None:
    _check_all(text)
    _check_phrases(text)
    folded = signals.fold(text)
    assert _unspaced_evidence(folded) == _unspaced_evidence_plainly(folded)
    # read as U+FFFD, which no phrase or probe holds: a separator, as the surrogate is
    standin = folding.matchable(text)
    assert standin != text
    assert signals.scan_text(text) == signals.scan_text(standin)
    assert signals.scan_code(text, keyword_full=0) == signals.scan_code(standin, keyword_full=0)


@pytest.mark.parametrize("text", UNSPACED_TEXTS, ids=range(len(UNSPACED_TEXTS)))
def test_one_pass_over_substring_phrases_finds_their_places_as_a_search_for_each(
    text: str,
) -> None:
    folded = signals.fold(text)
    assert _unspaced_evidence(folded) == _unspaced_evidence_plainly(folded)


SELF_OVERLAPPING: Final = sorted(
    key
    for key, group in signals.LEXICON._substrings
    if group in signals.CONVERSATIONAL and any(key[:i] == key[-i:] for i in range(1, len(key)))
)
"""Conversational phrases that can overlap themselves ("哈哈" in "哈哈哈"), where a pass that
reports overlapping occurrences must still cover as successive searches do."""


@pytest.mark.parametrize("key", SELF_OVERLAPPING)
def test_a_phrase_that_overlaps_itself_covers_what_successive_searches_cover(key: str) -> None:
    border = max(i for i in range(1, len(key)) if key[:i] == key[-i:])
    for text in (key + key[border:], "a " + key + key[border:] + key, key[:-1] + key):
        assert _unspaced_evidence(text) == _unspaced_evidence_plainly(text)


@settings(max_examples=300, deadline=None)
@given(unspaced_like)
def test_one_pass_over_substring_phrases_finds_their_places_in_generated_text(text: str) -> None:
    # repeated and overlapping phrases ("哈哈哈"): coverage takes non-overlapping occurrences
    folded = signals.fold(text)
    assert _unspaced_evidence(folded) == _unspaced_evidence_plainly(folded)


@pytest.mark.parametrize("text", UNSPACED_TEXTS, ids=range(len(UNSPACED_TEXTS)))
def test_substring_phrases_are_found_as_a_search_for_each_finds_them(text: str) -> None:
    folded = signals.fold(text)
    assert _substring_counts(folded) == _substring_counts_plainly(folded)


@settings(max_examples=300, deadline=None)
@given(unspaced_like)
def test_substring_phrases_are_found_in_generated_text(text: str) -> None:
    folded = signals.fold(text)
    assert _substring_counts(folded) == _substring_counts_plainly(folded)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=CODE_ALPHABET, max_size=70))
def test_short_texts_find_their_gates_by_one_set_intersection_with_the_same_answer(
    text: str,
) -> None:
    # up to detectors._FEW_CHARS characters only the groups behind present gates are visited
    _check_all(text)
