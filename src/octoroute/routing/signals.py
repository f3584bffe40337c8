"""Cheap text signals for routing: keyword groups, code and maths detectors, sizes.

Everything is compiled at import and every pass is linear in the scanned text:

* words are found by one tokenising regex and looked up in a dict keyed by their first word
  (multi-word phrases are then compared token by token), which gives whole-word matching in
  every language that separates words with spaces, whatever the number of phrases;
* scripts without word boundaries (CJK, Korean, Hindi) are matched by substring, and only when
  the text contains such a character;
* the regex detectors anchor on a literal or a look-behind and use bounded repetition, so none
  of them can backtrack catastrophically (hypothesis tests feed them adversarial text).

A group scores the number of *distinct* phrases that occur, so repetition in a long paste does not
inflate it. :func:`scan_text` returns the raw evidence; :mod:`octoroute.routing.metadata` turns it
into named signals.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple

from octoroute.routing.detectors import (
    ARITHMETIC,
    CODE_DETECTORS,
    CODE_SYMBOL,
    EQUATION,
    FENCE,
    MODULAR,
    SYNTAX,
    SYNTAX_ENOUGH,
    TEXT_DETECTORS,
    TRACE,
    has_digit,
    has_file_name,
)
from octoroute.routing.lexicon_cjk import JA, KO_HI, ZH
from octoroute.routing.lexicon_en import EN
from octoroute.routing.lexicon_other import NORDIC_NL, PT_IT, RU, TR_AR
from octoroute.routing.lexicon_spaced import DE, ES, FR

CONVERSATIONAL: Final = frozenset(
    {"greet", "thanks", "smalltalk", "filler", "urgency", "affirm", "proceed"}
)
"""Groups whose words do not carry a task: a turn made only of them is small talk."""
POSITIONAL: Final = frozenset({"lookup"})
"""Groups whose first position is recorded in :attr:`Evidence.first` (the rules read no other)."""

_FOLD_GROUPS: Final = "aàáâãäåāă cçćč eèéêëēėę iìíîïīı nñń oòóôõöøō uùúûüū yýÿ sśšş gğ zžźż lł её"
"""Each word is a base letter followed by the accented letters folded onto it."""
_FOLD: Final = str.maketrans(
    {
        **{char: group[0] for group in _FOLD_GROUPS.split() for char in group[1:]},
        "ß": "ss",
        "œ": "oe",
        "æ": "ae",
        "’": "'",
        **dict.fromkeys("\u0300\u0301\u0302\u0303\u0307\u0308\u030c\u0327"),
    }
)

_FOLD_TO: Final = {
    chr(code): "" if to is None else to if isinstance(to, str) else chr(to)
    for code, to in _FOLD.items()
}
""":data:`_FOLD` as character -> replacement, for :func:`fold`."""
_FOLDED_CHARS: Final = frozenset(_FOLD_TO)

_UNSPACED_CLASS: Final = (
    "\u0900-\u097f\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
)
_UNSPACED_RE: Final = re.compile(f"[{_UNSPACED_CLASS}]")
_WORD_RE: Final = re.compile(f"[^\\W_{_UNSPACED_CLASS}]+")
_BRACE_RE: Final = re.compile(r"\{([^{}]*)\}")
_ASCII_SPLIT: Final = bytes(byte if chr(byte).isalnum() else 0x20 for byte in range(128)) + bytes(
    [0x20] * 128
)
"""For ASCII text: letters and digits kept, everything else (controls too) to a space."""


def tokenize(folded: str, *, unspaced: bool) -> list[str]:
    """The words of ``folded`` text, split at anything that is not a letter or digit."""
    if folded.isascii() and not unspaced:
        # the same words, ~3x faster: bytes.translate maps every ASCII non-alphanumeric to space
        return folded.encode("ascii").translate(_ASCII_SPLIT).decode("ascii").split()
    # Beyond ASCII the regex is the fastest of the exact ways (``str.translate`` looks every
    # character up in a dict; splitting at separators needs a second pass for ``≡`` or ``→``).
    return _WORD_RE.findall(folded)


def fold(text: str) -> str:
    """Lower-case and strip the common Latin diacritics, so ``Explícame`` matches ``explicame``."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered  # every character the fold table maps is outside ASCII
    # ``str.translate`` on non-ASCII text looks every character up in a dict (~50 ns each); a
    # text holds a handful of distinct accented letters, and one ``str.replace`` per letter runs
    # in C, 3-4x faster on 200 characters. No replacement is itself folded: order is free.
    for char in _FOLDED_CHARS.intersection(lowered):
        lowered = lowered.replace(char, _FOLD_TO[char])
    return lowered


def _expand(phrase: str) -> list[str]:
    """``good {morning,night}`` -> ``["good morning", "good night"]`` (import time only)."""
    match = _BRACE_RE.search(phrase)
    if match is None:
        return [phrase.strip()]
    head, tail = phrase[: match.start()], phrase[match.end() :]
    out: list[str] = []
    for alternative in match.group(1).split(","):
        out.extend(_expand(head + alternative + tail))
    return out


class Evidence(NamedTuple):
    """Which keyword groups occurred in one text, and how many of their distinct phrases.

    A named tuple, like :class:`TextScan`, because one is built per scan.
    """

    counts: Mapping[str, int]
    """Group -> the number of distinct phrases of it that occurred (groups with none are absent)."""
    first: Mapping[str, int]
    """For :data:`POSITIONAL` groups only: the index of the first token (or character, for
    unspaced scripts) where the group matched."""
    tokens: int
    unspaced_chars: int
    covered: int
    """Tokens plus unspaced characters covered by :data:`CONVERSATIONAL` phrases (0 past 64
    tokens, where no rule reads it)."""


COVERED_MAX_TOKENS: Final = 64
"""Coverage by conversational phrases is only computed for texts up to this many tokens."""


class Lexicon:
    """A set of keyword groups compiled for whole-word (and CJK substring) lookup."""

    def __init__(
        self, tables: Iterable[Mapping[str, str]], *, positional: Iterable[str] = POSITIONAL
    ) -> None:
        positional = frozenset(positional)
        singles: dict[str, dict[str, set[str]]] = {}
        pairs: dict[tuple[str, str], dict[tuple[tuple[str, ...], str, str], None]] = {}
        substrings: dict[tuple[str, str], None] = {}
        for table in tables:
            for group, spec in table.items():
                for raw in spec.split("|"):
                    for phrase in _expand(raw):
                        key = fold(phrase)
                        if _UNSPACED_RE.search(key):
                            substrings[key, group] = None
                            continue
                        words = tuple(tokenize(key, unspaced=False))
                        if len(words) == 1:
                            singles.setdefault(words[0], {}).setdefault(group, set()).add(key)
                        elif words:
                            entry = (words[2:], group, key)
                            pairs.setdefault((words[0], words[1]), {})[entry] = None
        # A key has exactly one first word, so a group's count is the sum over the words that
        # occur of how many of its keys each word is: no per-scan set of keys is needed.
        self._singles = {
            word: tuple((group, len(keys)) for group, keys in groups.items())
            for word, groups in singles.items()
        }
        self._single_words = frozenset(self._singles)
        self._positional = positional
        self._positional_singles = {
            word: tuple(group for group in groups if group in positional)
            for word, groups in singles.items()
            if positional.intersection(groups)
        }
        self._positional_words = frozenset(self._positional_singles)
        self._pairs = {pair: tuple(entries) for pair, entries in pairs.items()}
        self._pair_keys = frozenset(self._pairs)
        self._conversational = frozenset(
            word for word, groups in singles.items() if CONVERSATIONAL.intersection(groups)
        )
        self._substrings = tuple(substrings)
        # Each substring filed under one of its unspaced characters: only keys whose character
        # occurs in the text are looked for (in table order, which decides ``first``).
        by_char: dict[str, list[int]] = {}
        for index, (key, _) in enumerate(self._substrings):
            anchor = _UNSPACED_RE.search(key)
            assert anchor is not None
            by_char.setdefault(anchor.group(), []).append(index)
        self._substrings_by_char = {char: tuple(found) for char, found in by_char.items()}

    def scan(self, folded: str, tokens: Sequence[str], *, unspaced: bool) -> Evidence:
        """Match every phrase against ``tokens`` (from ``folded``) and, if asked, substrings."""
        counts: dict[str, int] = {}
        first_at: dict[str, int] = {}
        count = len(tokens)
        positional = self._positional
        # Set operations run in C: the words of the text against the word table, then its
        # adjacent pairs against the first two words of every longer phrase. Positions are
        # looked up (with list.index) only for the few hits that need one.
        hits = self._single_words.intersection(tokens)
        singles = self._singles
        for word in hits:
            for group, keys in singles[word]:
                counts[group] = counts.get(group, 0) + keys
        for word in self._positional_words.intersection(hits):
            at = tokens.index(word)
            for group in self._positional_singles[word]:
                if at < first_at.get(group, count):
                    first_at[group] = at
        track_cover = count <= COVERED_MAX_TOKENS
        spans: list[tuple[int, int]] = []
        pair_hits = self._pair_keys.intersection(itertools.pairwise(tokens))
        if pair_hits:
            matched: set[tuple[str, str]] = set()
            last = count - 1
            for pair in pair_hits:
                entries = self._pairs[pair]
                head, second = pair
                # every occurrence when positions matter, else the first is enough (it exists)
                remaining = tokens.count(head) - (tokens[last] == head) if track_cover else last
                at = -1
                while remaining:
                    at = tokens.index(head, at + 1, last)
                    remaining -= 1
                    if tokens[at + 1] == second:
                        for rest, group, key in entries:
                            end = at + 2 + len(rest)
                            if rest and tuple(tokens[at + 2 : end]) != rest:
                                continue
                            matched.add((group, key))
                            if group in positional and at < first_at.get(group, count):
                                first_at[group] = at
                            if track_cover and group in CONVERSATIONAL:
                                spans.append((at, end))
                        if not track_cover:
                            break
            for group, _ in matched:
                counts[group] = counts.get(group, 0) + 1
        covered_count = 0
        if track_cover:
            conversational = self._conversational
            if spans:
                covered = bytearray(map(conversational.__contains__, tokens))
                for at, end in spans:
                    covered[at:end] = b"\x01" * (end - at)
                covered_count = sum(covered)
            else:
                covered_count = sum(map(conversational.__contains__, tokens))
        unspaced_chars = 0
        if unspaced:
            characters = _UNSPACED_RE.findall(folded)
            unspaced_chars = len(characters)
            candidates: list[int] = []
            index = self._substrings_by_char
            for char in set(characters):
                candidates.extend(index.get(char, ()))
            candidates.sort()
            marked = bytearray(len(folded)) if unspaced_chars <= COVERED_MAX_TOKENS else None
            found: set[tuple[str, str]] = set()
            for candidate in candidates:
                key, group = self._substrings[candidate]
                at = folded.find(key)
                if at < 0:
                    continue
                found.add((key, group))
                if group in positional:
                    first_at.setdefault(group, at)
                if marked is not None and group in CONVERSATIONAL:
                    while at >= 0:
                        marked[at : at + len(key)] = b"\x01" * len(key)
                        at = folded.find(key, at + len(key))
            for _, group in found:
                counts[group] = counts.get(group, 0) + 1
            if marked is not None:
                covered_count += sum(
                    1 for at, flag in enumerate(marked) if flag and _UNSPACED_RE.match(folded, at)
                )
        return Evidence(
            counts=counts,
            first=first_at,
            tokens=count,
            unspaced_chars=unspaced_chars,
            covered=covered_count,
        )


LEXICON: Final = Lexicon((EN, ES, DE, FR, PT_IT, NORDIC_NL, RU, TR_AR, ZH, JA, KO_HI))
"""Every language's keyword groups in one table: a request may mix languages."""

# --- bounds -------------------------------------------------------------------------------

KEYWORD_FULL_CHARS: Final = 1600
"""Turns up to this size are scanned whole for keywords; longer ones at their two ends only."""
KEYWORD_HEAD_CHARS: Final = 500
KEYWORD_TAIL_CHARS: Final = 700
DETECT_HEAD_CHARS: Final = 1536
DETECT_TAIL_CHARS: Final = 1536

_MATH_SYMBOL_RE: Final = re.compile(r"[∑∫∂√∞≡≤≥≠∈∉⊂⊆∀∃∏∇±ℝℕℤℚℂΣ]")
"""Only non-ASCII characters: ASCII text is not searched."""
_LATEX_RE: Final = re.compile(
    r"\\(?:frac|sum|int|sqrt|lim|mathbb|forall|exists|infty|cdot|leq|geq|neq|binom|partial)\b"
)
_WORD_UNITS: Final = ("word", "palabras", "worter", "mots", "parole", "palavras", "слов", "字")
"""The units of a requested length ("500 words"); ``word`` covers ``words``."""
_WORD_TARGET_RE: Final = re.compile(
    r"(\d{1,3}(?:[,.]\d{3})+|\d{1,6}) ?-? ?(?:" + "|".join(_WORD_UNITS) + ")"
)
"""A number then a unit: it only matches with a digit up to 4 characters before a unit."""
_DIGIT_RE: Final = re.compile(r"\d")
_LIST_ITEM_RE: Final = re.compile(r"\n[ \t]{0,8}+(?:[-*•]|\d{1,2}[.)])[ \t]+\S")
"""Possessive ``{0,8}+``: the same matches (what follows is never a blank), without ``re``
backtracking through the indentation of every line of a pasted file (4x faster on code)."""


class TextScan(NamedTuple):
    """Everything the metadata step needs to know about one piece of text.

    A named tuple rather than a frozen dataclass: one is built per scanned message, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) cost ~1.7 µs of a ~10 µs scan.
    """

    evidence: Evidence
    words: int
    """Words in the text (two unspaced characters count as one), estimated for long texts."""
    fence: bool
    syntax: int
    """How many distinct kinds of code syntax matched, counted up to ``SYNTAX_ENOUGH`` (2)."""
    trace: bool
    file_ext: bool
    code_symbol: bool
    math_symbols: bool
    arithmetic: bool
    equation: bool
    modular: bool
    word_target: int
    """The largest "N words" length the text asks for, 0 when none."""
    list_items: int
    question: bool


def _word_target(folded: str) -> int:
    """The largest "N words" length asked for: 0 unless a digit closely precedes a unit."""
    # The regex starts with a digit class ``re`` cannot skip to; the units are literals it can.
    for unit in _WORD_UNITS:
        at = folded.find(unit)
        while at >= 0:
            if _DIGIT_RE.search(folded, max(0, at - 4), at):
                return max(
                    (
                        int(match.group(1).replace(",", "").replace(".", ""))
                        for match in _WORD_TARGET_RE.finditer(folded)
                    ),
                    default=0,
                )
            at = folded.find(unit, at + 1)
    return 0


def _instruction(text: str) -> str:
    """The parts of a long turn that are likely its instruction rather than pasted material.

    That is its first paragraph (cut to ``KEYWORD_HEAD_CHARS``) and its last paragraph when that
    is short (an instruction after the paste); a turn without paragraphs gives its two ends.
    """
    head_end = text.find("\n\n", 0, KEYWORD_HEAD_CHARS)
    head = text[: KEYWORD_HEAD_CHARS if head_end < 0 else head_end]
    tail_start = text.rfind("\n\n", len(text) - KEYWORD_TAIL_CHARS)
    if tail_start < 0:
        if head_end >= 0:
            return head
        tail_start = len(text) - KEYWORD_TAIL_CHARS // 2
    if tail_start <= len(head):
        return text  # the two ends overlap: a short text is all instruction (and read once)
    return head + "\n" + text[tail_start:]


def _ends(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[len(text) - tail :]


def scan_text(text: str, *, keyword_full: int = KEYWORD_FULL_CHARS) -> TextScan:
    """Scan ``text`` for keyword evidence and detector hits, in bounded time.

    Keywords are looked for in the whole text when it is at most ``keyword_full`` characters,
    else in its first and last few hundred: a long turn is an instruction wrapped around pasted
    material, and the topic of the material must not outvote the instruction. The code
    detectors look at up to 4 KiB from both ends, where a paste shows what it is.
    """
    keyword_text = text if len(text) <= keyword_full else _instruction(text)
    detect_text = "\n" + _ends(text, DETECT_HEAD_CHARS, DETECT_TAIL_CHARS) + "\n"
    folded = fold(keyword_text)
    unspaced = not folded.isascii() and _UNSPACED_RE.search(folded) is not None
    tokens = tokenize(folded, unspaced=unspaced)
    evidence = LEXICON.scan(folded, tokens, unspaced=unspaced)
    words = len(tokens) + (evidence.unspaced_chars + 1) // 2
    if keyword_text is not text:
        words = max(words, len(text) // 6)
    target = 0
    if unspaced or (
        has_digit(folded) and ("word" in folded or "palabra" in folded or "mot" in folded)
    ):
        target = _word_target(folded)
    code = CODE_DETECTORS.run(detect_text)
    text_hits = TEXT_DETECTORS.run(folded)
    return TextScan(
        evidence=evidence,
        words=words,
        fence=bool(code & FENCE),
        syntax=min((code & SYNTAX).bit_count(), SYNTAX_ENOUGH),
        trace=bool(code & TRACE),
        file_ext=has_file_name(detect_text),
        code_symbol=bool(text_hits & CODE_SYMBOL),
        math_symbols=(
            (not keyword_text.isascii() and _MATH_SYMBOL_RE.search(keyword_text) is not None)
            or ("\\" in keyword_text and _LATEX_RE.search(keyword_text) is not None)
        ),
        arithmetic=bool(text_hits & ARITHMETIC),
        equation=bool(text_hits & EQUATION),
        modular=bool(text_hits & MODULAR),
        word_target=target,
        list_items=len(_LIST_ITEM_RE.findall(detect_text)),
        question="?" in keyword_text or "？" in keyword_text or "¿" in keyword_text,
    )
