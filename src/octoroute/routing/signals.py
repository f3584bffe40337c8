"""Cheap text signals for routing: keyword groups, code and maths detectors, sizes.

Everything is compiled at import and every pass is linear in the scanned text:

* the keyword groups come from one file per language (:mod:`octoroute.routing.lexicon`), all
  merged into one :class:`Lexicon`, since a request may mix languages;
* words are found by one tokenising regex and looked up in a dict keyed by their first word
  (multi-word phrases are then compared token by token), which gives whole-word matching in
  every language that separates words with spaces, whatever the number of phrases;
* scripts matched by substring (:data:`~.folding.UNSPACED_CLASS`: CJK, Thai, Korean and the Indic
  scripts) are matched that way only when the text contains such a character: every substring
  phrase in one pass of an Aho-Corasick automaton, which reports where each occurs;
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

from ahocorasick_rs import AhoCorasick, Implementation

from octoroute.routing.detectors import (
    ARITHMETIC,
    CODE_DETECTORS,
    CODE_SYMBOL,
    CODE_SYMBOL_DETECTORS,
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
from octoroute.routing.lexicon import LANGUAGES, KeywordGroup, Language
from octoroute.routing.lexicon.folding import (
    UNSPACED_CLASS,
    UNSPACED_RE,
    asks_question,
    fold,
    greek_question_marks,
    overlapping_matches,
    searchable_beyond_ascii,
    tokenize,
    unspaced_word_count,
)
from octoroute.routing.lexicon.length import LengthMatcher

__all__ = [
    "CODE_GROUPS",
    "CODE_LEXICON",
    "CONVERSATIONAL",
    "LENGTH",
    "LEXICON",
    "POSITIONAL",
    "CodeScan",
    "Evidence",
    "KeywordGroup",
    "Lexicon",
    "TextScan",
    "asks_question",
    "fold",
    "greek_question_marks",
    "scan_code",
    "scan_text",
    "tokenize",
]

G: Final = KeywordGroup
CONVERSATIONAL: Final[frozenset[str]] = frozenset(
    group.value
    for group in (G.GREET, G.THANKS, G.SMALLTALK, G.FILLER, G.URGENCY, G.AFFIRM, G.PROCEED)
)
"""Groups whose words do not carry a task: a turn made only of them is small talk."""
POSITIONAL: Final[frozenset[str]] = frozenset({G.LOOKUP.value})
"""Groups whose first position is recorded in :attr:`Evidence.first` (the rules read no other)."""


class Evidence(NamedTuple):
    """Which keyword groups occurred in one text, and how many of their distinct phrases.

    A named tuple, like :class:`TextScan`, because one is built per scan.
    """

    counts: Mapping[str, int]
    """Group -> the number of distinct phrases of it that occurred (groups with none are absent).
    Keys are :class:`KeywordGroup` values as plain strings (``"math"``, which hash faster than the
    members); ``counts.get(KeywordGroup.MATH)`` finds the same entry."""
    first: Mapping[str, int]
    """For :data:`POSITIONAL` groups only: the index of the first token where the group matched,
    else (only unspaced phrases matched) the first character where one of them starts."""
    tokens: int
    unspaced_chars: int
    covered: int
    """Tokens plus unspaced characters covered by :data:`CONVERSATIONAL` phrases (0 past 64
    tokens, where no rule reads it)."""


COVERED_MAX_TOKENS: Final = 64
"""Coverage by conversational phrases is only computed for texts up to this many tokens."""


class Lexicon:
    """Every language's keyword groups compiled for whole-word (and CJK substring) lookup."""

    def __init__(
        self,
        languages: Iterable[Language],
        *,
        positional: Iterable[str] = POSITIONAL,
        groups: Iterable[str] | None = None,
    ) -> None:
        """``groups``: only these groups (all by default). A group's count does not depend on
        which other groups are compiled, so a smaller table counts its groups as the full one."""
        positional = frozenset(str(group) for group in positional)
        wanted = None if groups is None else frozenset(str(group) for group in groups)
        singles: dict[str, dict[str, None]] = {}
        pairs: dict[tuple[str, str], dict[tuple[tuple[str, ...], str, str], None]] = {}
        substrings: dict[tuple[str, str], None] = {}
        for language in languages:
            for member, keys in language.groups.items():
                group = member.value  # a plain str: the counts are looked up by name
                if wanted is not None and group not in wanted:
                    continue
                for key in keys:
                    if UNSPACED_RE.search(key):
                        substrings[key, group] = None
                        continue
                    words = tuple(key.split(" "))
                    if len(words) == 1:
                        singles.setdefault(words[0], {})[group] = None
                    else:
                        pairs.setdefault((words[0], words[1]), {})[words[2:], group, key] = None
        # A key is its words, so a single word is one key of each group it is in: a group's count
        # is the number of its words that occur, plus its longer phrases that do.
        self._singles = {word: tuple(groups) for word, groups in singles.items()}
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
        # Per pair, the groups of its two-word phrases whose position nobody reads ("plain":
        # counted when the pair occurs), and the entries to check where it occurs ("placed":
        # longer phrases, positional groups and, when coverage is tracked, conversational ones).
        self._plain_pairs, self._placed_pairs = _split_pairs(self._pairs, positional)
        self._plain_pairs_covered, self._placed_pairs_covered = _split_pairs(
            self._pairs, positional | CONVERSATIONAL
        )
        self._conversational = frozenset(
            word for word, groups in singles.items() if CONVERSATIONAL.intersection(groups)
        )
        # Every phrase of two words or more for _scan_phrases: each pair of first words, then
        # each longer phrase, as a pattern with a space at both ends.
        self._phrase_pairs = tuple(self._pairs)
        self._pair_count = len(self._phrase_pairs)
        longer = sorted(
            {key for entries in self._pairs.values() for rest, _, key in entries if rest}
        )
        self._phrase_index = {key: self._pair_count + index for index, key in enumerate(longer)}
        phrases = [f" {first} {second} " for first, second in self._phrase_pairs]
        phrases += [f" {key} " for key in longer]
        self._phrase_automaton = (
            AhoCorasick(phrases, implementation=Implementation.DFA) if phrases else None
        )
        self._substrings = tuple(substrings)
        # Every substring key in one automaton, found in one pass over the text with where each
        # occurrence starts; a key listed in several groups counts for each of them.
        groups_of: dict[str, list[str]] = {}
        for key, group in self._substrings:
            groups_of.setdefault(key, []).append(group)
        self._substring_keys = tuple(groups_of)
        self._substring_groups = tuple(tuple(groups_of[key]) for key in self._substring_keys)
        self._substring_automaton = (
            AhoCorasick(self._substring_keys, implementation=Implementation.DFA)
            if self._substring_keys
            else None
        )

    def scan(
        self, folded: str, tokens: Sequence[str], *, unspaced: bool, beyond: str | None = None
    ) -> Evidence:
        """Match every phrase against ``tokens`` (from ``folded``) and, if asked, substrings.

        ``beyond``: :func:`~.folding.searchable_beyond_ascii` of ``folded``, when the caller
        has it."""
        counts: dict[str, int] = {}
        first_at: dict[str, int] = {}
        count = len(tokens)
        # Set operations run in C: the words of the text against the word table, then its
        # adjacent pairs against the first two words of every longer phrase. Positions are
        # looked up (with list.index) only for the few hits that need one.
        hits = self._single_words.intersection(tokens)
        if hits:
            singles = self._singles
            for word in hits:
                for group in singles[word]:
                    counts[group] = counts.get(group, 0) + 1
            positional_hits = self._positional_words.intersection(hits)
            for word in positional_hits:
                at = tokens.index(word)
                for group in self._positional_singles[word]:
                    if at < first_at.get(group, count):
                        first_at[group] = at
        track_cover = count <= COVERED_MAX_TOKENS
        spans: list[tuple[int, int]] = []
        if track_cover:
            pair_hits = self._pair_keys.intersection(itertools.pairwise(tokens))
            if pair_hits:
                spans = self._scan_pairs(tokens, pair_hits, counts, first_at, track_cover)
        else:
            self._scan_phrases(tokens, counts, first_at)
        covered_count = 0
        if track_cover and hits:
            conversational = self._conversational.intersection(hits)
            if spans:
                covered = bytearray(map(conversational.__contains__, tokens))
                for at, end in spans:
                    covered[at:end] = b"\x01" * (end - at)
                covered_count = sum(covered)
            elif conversational:
                covered_count = sum(map(tokens.count, conversational))
        elif spans:
            covered_count = sum(end - at for at, end in _merged(spans))
        unspaced_chars = 0
        if unspaced:
            unspaced_chars, covered_unspaced = self._scan_unspaced(
                folded,
                searchable_beyond_ascii(folded) if beyond is None else beyond,
                counts,
                first_at,
            )
            covered_count += covered_unspaced
        return Evidence(counts, first_at, count, unspaced_chars, covered_count)

    def _scan_pairs(
        self,
        tokens: Sequence[str],
        pair_hits: Iterable[tuple[str, str]],
        counts: dict[str, int],
        first_at: dict[str, int],
        track_cover: bool,
    ) -> list[tuple[int, int]]:
        """Count the phrases of two words or more into ``counts`` (and ``first_at``); return the
        spans of conversational ones when ``track_cover``. ``pair_hits``: the adjacent pairs of
        ``tokens`` that begin a phrase.

        A phrase of exactly two words whose position nobody reads is matched by its pair being
        there; the others are checked where the pair occurs: at every occurrence up to
        :data:`COVERED_MAX_TOKENS` tokens, else at the first one (the rest of a longer phrase is
        only compared there). Occurrences are found by ``list.index`` on the first word (in C;
        faster than searching the list of pairs, whose elements compare as tuples).
        """
        count = len(tokens)
        last = count - 1
        matched: set[tuple[str, str]] = set()
        spans: list[tuple[int, int]] = []
        plain = self._plain_pairs_covered if track_cover else self._plain_pairs
        placed = self._placed_pairs_covered if track_cover else self._placed_pairs
        positional = self._positional
        for pair in pair_hits:
            for group in plain.get(pair, ()):
                counts[group] = counts.get(group, 0) + 1
            entries = placed.get(pair)
            if entries is None:
                continue
            head, second = pair
            # every occurrence when positions matter, else the first is enough (it exists)
            remaining = tokens.count(head) - (tokens[last] == head) if track_cover else last
            at = -1
            while remaining:
                at = tokens.index(head, at + 1, last)
                remaining -= 1
                if tokens[at + 1] != second:
                    continue
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
        return spans

    def _scan_phrases(
        self, tokens: Sequence[str], counts: dict[str, int], first_at: dict[str, int]
    ) -> None:
        """:meth:`_scan_pairs` without coverage (a text past :data:`COVERED_MAX_TOKENS`), in one
        pass of an automaton over the words joined by spaces instead of a tuple per adjacent
        pair: ~25 us less on 250 words.

        Each phrase of two words or more is a pattern with a space at both ends, so it matches
        whole words only. As :meth:`_scan_pairs` does past that many tokens, a longer phrase
        counts only where its first two words first occur together (the rest of it is only
        compared there), and a positional group's place is that first occurrence.
        """
        automaton = self._phrase_automaton
        if automaton is None:
            return
        joined = " " + " ".join(tokens) + " "
        first: dict[int, int] = {}
        starts: dict[int, set[int]] = {}
        for pattern, at, _ in overlapping_matches(automaton.find_matches_as_indexes, joined):
            if pattern < self._pair_count:
                if pattern not in first:
                    first[pattern] = at  # matches of one pattern come in the order they start
            else:
                starts.setdefault(pattern, set()).add(at)
        if not first:
            return
        pairs, plain, placed = self._phrase_pairs, self._plain_pairs, self._placed_pairs
        phrase_index = self._phrase_index
        positional = self._positional
        matched: set[tuple[str, str]] = set()
        count = len(tokens)
        for pattern, at in first.items():
            pair = pairs[pattern]
            for group in plain.get(pair, ()):
                counts[group] = counts.get(group, 0) + 1
            entries = placed.get(pair)
            if entries is None:
                continue
            token_at = -1
            for rest, group, key in entries:
                if rest and at not in starts.get(phrase_index[key], ()):
                    continue
                matched.add((group, key))
                if group in positional:
                    if token_at < 0:
                        token_at = joined.count(" ", 0, at)
                    if token_at < first_at.get(group, count):
                        first_at[group] = token_at
        for group, _ in matched:
            counts[group] = counts.get(group, 0) + 1

    def _scan_unspaced(
        self,
        folded: str,
        beyond: str,
        counts: dict[str, int],
        first_at: dict[str, int],
    ) -> tuple[int, int]:
        """Count the substring phrases in ``folded`` into ``counts`` (and ``first_at`` for a
        positional group no word matched); return the unspaced characters and how many of them
        conversational phrases cover (0 past :data:`COVERED_MAX_TOKENS` of them). ``beyond``:
        :func:`~.folding.searchable_beyond_ascii` of ``folded`` (all unspaced characters)."""
        # counted by runs: a list of one string per character cost ~40 ns a CJK character
        unspaced_chars = sum(map(len, _UNSPACED_RUN_RE.findall(beyond)))
        track_cover = unspaced_chars <= COVERED_MAX_TOKENS
        covered: set[int] = set()
        substring_first: dict[str, int] = {}
        automaton = self._substring_automaton
        if automaton is None:
            return unspaced_chars, 0
        # Each key's occurrences, overlapping ones too, in the order they end: its first start
        # is the least, and its coverage takes them greedily from the left without overlap (as
        # successive ``str.find`` from the end of the last one would).
        starts: dict[int, list[int]] = {}
        for key_index, at, _ in overlapping_matches(automaton.find_matches_as_indexes, folded):
            found = starts.get(key_index)
            if found is None:
                starts[key_index] = [at]
            else:
                found.append(at)
        positional = self._positional
        keys, groups_of = self._substring_keys, self._substring_groups
        for key_index, found in starts.items():
            at = min(found)
            groups = groups_of[key_index]
            for group in groups:
                counts[group] = counts.get(group, 0) + 1
                if group in positional and at < substring_first.get(group, len(folded)):
                    substring_first[group] = at
            if track_cover and not CONVERSATIONAL.isdisjoint(groups):
                length = len(keys[key_index])
                end = -1
                for start in sorted(found):
                    if start >= end:
                        end = start + length
                        covered.update(range(start, end))
        for positional_group, at in substring_first.items():
            first_at.setdefault(positional_group, at)
        covered_chars = 0
        if covered:
            covered_chars = sum(1 for at in covered if UNSPACED_RE.match(folded, at))
        return unspaced_chars, covered_chars


_UNSPACED_RUN_RE: Final = re.compile(f"[{UNSPACED_CLASS}]+")
"""Runs of the characters :data:`~.folding.UNSPACED_RE` finds one by one."""
_PairEntry = tuple[tuple[str, ...], str, str]
"""The rest of a phrase after its first two words, its group and its key."""


def _split_pairs(
    pairs: Mapping[tuple[str, str], tuple[_PairEntry, ...]], placed_groups: frozenset[str]
) -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[tuple[str, str], tuple[_PairEntry, ...]]]:
    """``(plain, placed)`` for :meth:`Lexicon._scan_pairs`: two-word phrases of groups not in
    ``placed_groups`` by their group alone, everything else as entries to check in place."""
    plain: dict[tuple[str, str], tuple[str, ...]] = {}
    placed: dict[tuple[str, str], tuple[_PairEntry, ...]] = {}
    for pair, entries in pairs.items():
        simple = tuple(
            group for rest, group, _ in entries if not rest and group not in placed_groups
        )
        others = tuple(entry for entry in entries if entry[0] or entry[1] in placed_groups)
        if simple:
            plain[pair] = simple
        if others:
            placed[pair] = others
    return plain, placed


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined."""
    out: list[tuple[int, int]] = []
    for at, end in sorted(spans):
        if out and at <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((at, end))
    return out


LEXICON: Final = Lexicon(LANGUAGES)
"""Every language's keyword groups in one table: a request may mix languages."""
CODE_GROUPS: Final[frozenset[str]] = frozenset(
    group.value
    for group in (G.CODE_STRONG, G.CODE_WEAK, G.CODE_PHRASE, G.CODE_NEG, G.WRITE_VERB, G.CODE_NOUN)
)
"""The groups a code score reads (:func:`scan_code`)."""
CODE_LEXICON: Final = Lexicon(LANGUAGES, positional=(), groups=CODE_GROUPS)
"""Only :data:`CODE_GROUPS`: what :func:`scan_code` looks up (a tenth of the words)."""
LENGTH: Final = LengthMatcher(LANGUAGES)
"""Every language's word units, for :attr:`TextScan.word_target`."""

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
    """The largest length the text asks for ("2000 words", "500 Wörter", "800字"), 0 when none
    (:mod:`octoroute.routing.lexicon.length`)."""
    list_items: int
    question: bool
    """Whether the text has a question mark (:func:`~.folding.asks_question`) or a Spanish
    ``¿``."""


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


class _Prepared(NamedTuple):
    """The slices of a text that the scans read, and its folded words."""

    keyword_text: str
    detect_text: str
    folded: str
    beyond: str
    """The characters of ``folded`` beyond ASCII, or all of it when most are
    (:func:`~.folding.searchable_beyond_ascii`): the character-class searches for scripts and
    symbols read these instead of the whole text."""
    unspaced: bool
    tokens: list[str]


def _prepare(text: str, keyword_full: int) -> _Prepared:
    keyword_text = text if len(text) <= keyword_full else _instruction(text)
    detect_text = "\n" + _ends(text, DETECT_HEAD_CHARS, DETECT_TAIL_CHARS) + "\n"
    folded = fold(keyword_text)
    beyond = "" if folded.isascii() else searchable_beyond_ascii(folded)
    unspaced = beyond != "" and UNSPACED_RE.search(beyond) is not None
    tokens = tokenize(folded, unspaced=unspaced, beyond=beyond)
    return _Prepared(keyword_text, detect_text, folded, beyond, unspaced, tokens)


class CodeScan(NamedTuple):
    """The fields of a :class:`TextScan` that a code score reads, from :func:`scan_code`."""

    evidence: Evidence
    """The counts of :data:`CODE_GROUPS` only."""
    fence: bool
    syntax: int
    trace: bool
    file_ext: bool
    code_symbol: bool


def scan_code(text: str, *, keyword_full: int = KEYWORD_FULL_CHARS) -> CodeScan:
    """What :func:`scan_text` finds in ``text`` that says whether it is code, and nothing else.

    A context message other than a user turn is only asked that (is this a coding thread?),
    so it is spared the rest of the lexicon, the formula, length and list detectors: about
    half the cost of a full scan. Every field and count equals the full scan's
    (``tests/unit/test_routing_detectors.py``).
    """
    _, detect_text, folded, beyond, unspaced, tokens = _prepare(text, keyword_full)
    evidence = CODE_LEXICON.scan(folded, tokens, unspaced=unspaced, beyond=beyond)
    code = CODE_DETECTORS.run(detect_text)
    return CodeScan(
        evidence,
        bool(code & FENCE),
        min((code & SYNTAX).bit_count(), SYNTAX_ENOUGH),
        bool(code & TRACE),
        has_file_name(detect_text),
        CODE_SYMBOL_DETECTORS.run(folded) != 0,
    )


def scan_text(text: str, *, keyword_full: int = KEYWORD_FULL_CHARS) -> TextScan:
    """Scan ``text`` for keyword evidence and detector hits, in bounded time.

    Keywords are looked for in the whole text when it is at most ``keyword_full`` characters,
    else in its first and last few hundred: a long turn is an instruction wrapped around pasted
    material, and the topic of the material must not outvote the instruction. The code
    detectors look at up to 4 KiB from both ends, where a paste shows what it is.
    """
    keyword_text, detect_text, folded, beyond, unspaced, tokens = _prepare(text, keyword_full)
    evidence = LEXICON.scan(folded, tokens, unspaced=unspaced, beyond=beyond)
    words = len(tokens)
    if evidence.unspaced_chars:
        words += unspaced_word_count(folded, beyond, evidence.unspaced_chars)
    if keyword_text is not text:
        words = max(words, len(text) // 6)
    digit = has_digit(folded)
    target = LENGTH.target(folded, tokens, unspaced=unspaced) if digit else 0
    code = CODE_DETECTORS.run(detect_text)
    text_hits = TEXT_DETECTORS.run(folded, digit=digit)
    # positional: a named tuple built with keywords costs ~1 µs more
    return TextScan(
        evidence,
        words,
        bool(code & FENCE),
        min((code & SYNTAX).bit_count(), SYNTAX_ENOUGH),
        bool(code & TRACE),
        has_file_name(detect_text),
        bool(text_hits & CODE_SYMBOL),
        (
            not keyword_text.isascii()
            and _MATH_SYMBOL_RE.search(searchable_beyond_ascii(keyword_text)) is not None
        )
        or ("\\" in keyword_text and _LATEX_RE.search(keyword_text) is not None),
        bool(text_hits & ARITHMETIC),
        bool(text_hits & EQUATION),
        bool(text_hits & MODULAR),
        target,
        len(_LIST_ITEM_RE.findall(detect_text)),
        asks_question(keyword_text) or "¿" in keyword_text,
    )
