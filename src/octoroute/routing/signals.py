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
from dataclasses import dataclass
from typing import Final

from octoroute.routing.lexicon_cjk import JA, KO_HI, ZH
from octoroute.routing.lexicon_en import EN
from octoroute.routing.lexicon_other import NORDIC_NL, PT_IT, RU, TR_AR
from octoroute.routing.lexicon_spaced import DE, ES, FR

CONVERSATIONAL: Final = frozenset(
    {"greet", "thanks", "smalltalk", "filler", "urgency", "affirm", "proceed"}
)
"""Groups whose words do not carry a task: a turn made only of them is small talk."""

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

_UNSPACED_CLASS: Final = (
    "\u0900-\u097f\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
)
_UNSPACED_RE: Final = re.compile(f"[{_UNSPACED_CLASS}]")
_WORD_RE: Final = re.compile(f"[^\\W_{_UNSPACED_CLASS}]+")
_BRACE_RE: Final = re.compile(r"\{([^{}]*)\}")
_SEPARATORS: Final = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c\u00a0¡¿«»‘’“”„‹›–—…•·、。，！？：；（）【】「」『』《》〈〉～"
_SPLIT: Final = str.maketrans(dict.fromkeys(_SEPARATORS, " "))
"""Punctuation to spaces: ``str.split`` after this tokenises ~4x faster than any regex."""


def tokenize(folded: str, *, unspaced: bool) -> list[str]:
    """The words of ``folded`` text, split at anything that is not a letter or digit."""
    if unspaced:
        return _WORD_RE.findall(folded)
    raw = folded.translate(_SPLIT).split()
    if all(map(str.isalnum, raw)):
        return raw
    out: list[str] = []
    for token in raw:
        if token.isalnum():
            out.append(token)
        else:
            out.extend(_WORD_RE.findall(token))
    return out


def fold(text: str) -> str:
    """Lower-case and strip the common Latin diacritics, so ``Explícame`` matches ``explicame``."""
    return text.lower().translate(_FOLD)


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


@dataclass(frozen=True, slots=True)
class Evidence:
    """Which keyword phrases occurred in one text, by group."""

    found: Mapping[str, frozenset[str]]
    first: Mapping[str, int]
    """Index of the first token (or character, for unspaced scripts) where a group matched."""
    tokens: int
    unspaced_chars: int
    covered: int
    """Tokens plus unspaced characters covered by :data:`CONVERSATIONAL` phrases."""

    def count(self, group: str) -> int:
        """The number of distinct phrases of ``group`` that occurred."""
        phrases = self.found.get(group)
        return 0 if phrases is None else len(phrases)


class Lexicon:
    """A set of keyword groups compiled for whole-word (and CJK substring) lookup."""

    def __init__(self, tables: Iterable[Mapping[str, str]]) -> None:
        singles: dict[str, list[tuple[str, str]]] = {}
        pairs: dict[tuple[str, str], list[tuple[tuple[str, ...], str, str]]] = {}
        substrings: list[tuple[str, str]] = []
        for table in tables:
            for group, spec in table.items():
                for raw in spec.split("|"):
                    for phrase in _expand(raw):
                        key = fold(phrase)
                        if _UNSPACED_RE.search(key):
                            substrings.append((key, group))
                            continue
                        words = tuple(tokenize(key, unspaced=False))
                        if len(words) == 1:
                            singles.setdefault(words[0], []).append((group, key))
                        elif words:
                            entry = (words[2:], group, key)
                            pairs.setdefault((words[0], words[1]), []).append(entry)
        self._singles = {word: tuple(entries) for word, entries in singles.items()}
        self._pairs = {pair: tuple(entries) for pair, entries in pairs.items()}
        self._pair_keys = frozenset(self._pairs)
        self._single_words = frozenset(self._singles)
        self._conversational = frozenset(
            word
            for word, entries in self._singles.items()
            if any(group in CONVERSATIONAL for group, _ in entries)
        )
        self._substrings = tuple(substrings)

    def scan(self, folded: str, tokens: Sequence[str], *, unspaced: bool) -> Evidence:
        """Match every phrase against ``tokens`` (from ``folded``) and, if asked, substrings."""
        found: dict[str, set[str]] = {}
        first_at: dict[str, int] = {}
        count = len(tokens)
        covered = bytearray(count) if count <= 64 else None
        # Set intersections run in C: single words against the word table, adjacent pairs
        # against the first two words of every longer phrase. Positions are looked up (with
        # list.index) only for the few hits.
        for word in set(tokens) & self._single_words:
            for group, key in self._singles[word]:
                found.setdefault(group, set()).add(key)
                if group not in first_at:
                    first_at[group] = tokens.index(word)
        if covered is not None:
            conversational = self._conversational
            for i, token in enumerate(tokens):
                if token in conversational:
                    covered[i] = 1
        bigrams = list(itertools.pairwise(tokens))
        for pair in set(bigrams) & self._pair_keys:
            entries = self._pairs[pair]
            at = -1
            # every occurrence when positions matter, else the first is enough
            occurrences = bigrams.count(pair) if covered is not None else 1
            for _ in range(occurrences):
                at = bigrams.index(pair, at + 1)
                for rest, group, key in entries:
                    end = at + 2 + len(rest)
                    if rest and tuple(tokens[at + 2 : end]) != rest:
                        continue
                    found.setdefault(group, set()).add(key)
                    first_at[group] = min(first_at.get(group, at), at)
                    if covered is not None and group in CONVERSATIONAL:
                        covered[at:end] = b"\x01" * (end - at)
        covered_count = 0 if covered is None else sum(covered)
        unspaced_chars = 0
        if unspaced:
            unspaced_chars = len(_UNSPACED_RE.findall(folded))
            marked = bytearray(len(folded)) if unspaced_chars <= 64 else None
            for key, group in self._substrings:
                at = folded.find(key)
                if at < 0:
                    continue
                found.setdefault(group, set()).add(key)
                first_at.setdefault(group, at)
                if marked is not None and group in CONVERSATIONAL:
                    while at >= 0:
                        marked[at : at + len(key)] = b"\x01" * len(key)
                        at = folded.find(key, at + len(key))
            if marked is not None:
                covered_count += sum(
                    1 for at, flag in enumerate(marked) if flag and _UNSPACED_RE.match(folded, at)
                )
        return Evidence(
            found={group: frozenset(keys) for group, keys in found.items()},
            first=first_at,
            tokens=count,
            unspaced_chars=unspaced_chars,
            covered=covered_count,
        )


LEXICON: Final = Lexicon((EN, ES, DE, FR, PT_IT, NORDIC_NL, RU, TR_AR, ZH, JA, KO_HI))
"""Every language's keyword groups in one table: a request may mix languages."""

# --- regex detectors -------------------------------------------------------------------------
# Every pattern starts with a literal (or an alternation of literals) so that ``re`` can skip
# ahead with its fast prefix search; boundary checks come after the literal as look-behinds.
# Line-start patterns look for "\n" (the scanned text always starts with one).

KEYWORD_FULL_CHARS: Final = 1600
"""Turns up to this size are scanned whole for keywords; longer ones at their two ends only."""
KEYWORD_HEAD_CHARS: Final = 500
KEYWORD_TAIL_CHARS: Final = 700
DETECT_HEAD_CHARS: Final = 1536
DETECT_TAIL_CHARS: Final = 1536


_Pattern = tuple[str, "re.Pattern[str] | None"]


def _compile(*patterns: str | tuple[str, str]) -> tuple[_Pattern, ...]:
    """Patterns paired with a literal they must contain, checked first with ``in``.

    A plain string is a literal needle alone; ``(needle, regex)`` runs the regex only when the
    needle occurs. ``in`` costs tens of nanoseconds where even a failing ``re.search`` costs
    half a microsecond, and most prompts contain none of the needles.
    """
    out: list[_Pattern] = []
    for pattern in patterns:
        if isinstance(pattern, str):
            out.append((pattern, None))
        else:
            out.append((pattern[0], re.compile(pattern[1])))
    return tuple(out)


_SYNTAX: Final = (
    _compile(("def ", r"def [A-Za-z_]\w{0,60} ?\(")),
    _compile(("class ", r"class [A-Z]\w{0,60} ?[(:{<]")),
    _compile(("function", r"function ?\w{0,60} ?\([^)\n]{0,120}\) ?\{")),
    _compile("=>"),
    _compile(("#include", r"#include ?[<\"]")),
    _compile(
        (" import ", r"from [\w.]{1,80} import "),
        ("import ", r"\nimport [\w.]{1,80}[ \t]*;?[ \t]*\n"),
    ),
    _compile("console.log(", "System.out.print", "printf(", "println", "fmt.Print"),
    _compile(("public ", r"public (?:static )?(?:class|void|int|String|final) ")),
    _compile(("fn ", r"fn [a-z_]\w{0,60} ?[(<]")),
    _compile(
        *(
            (f"{kw} ", rf"{kw} (?:mut )?[A-Za-z_]\w{{0,60}} ?(?:: ?[\w<>\[\]]{{1,40}} ?)?=")
            for kw in ("let", "const", "var", "val")
        )
    ),
    _compile((";", r";[ \t]*\n")),
    _compile(("{", r"\{[ \t]*\n"), ("}", r"\n[ \t]*\}")),
    _compile(("SELECT ", r"SELECT [^\n;]{1,200}? FROM "), "select * from "),
    _compile(("<", r"</?[A-Za-z][\w-]{0,30}(?: [^<>\n]{0,200})?/?>")),
    _compile(("$ ", r"\n[ \t]*\$ \S"), "\n>>> ", "\nPS> "),
    _compile(("(", r"\.[a-z_]\w{0,60}\([^()\n]{0,80}\)")),
    _compile("==", "!=", "&&", "||", "+=", "::", "->"),
)
_TRACE: Final = _compile(
    "Traceback (most recent call last)",
    ('File "', r"File \"[^\"\n]{1,300}\", line \d"),
    (" at ", r"\n[ \t]+at [\w$.<>/]{1,200} ?\([^()\n]{0,200}:\d"),
    "Exception in thread",
    ("Error", r"Error(?<=[A-Za-z]{2}Error)(?::| \()"),
    ("Exception", r"Exception(?<=[A-Za-z]{2}Exception)(?::| \()"),
    ("error[E", r"error\[E\d{4}\]"),
    "panicked at",
    "\npanic: ",
    ("goroutine ", r"goroutine \d{1,9} \["),
    "Segmentation fault",
    "SIGSEGV",
    "core dumped",
    "\nnpm ERR!",
    "fatal error:",
    "undefined reference to",
    "WARNING: DATA RACE",
    "CrashLoopBackOff",
    "[Previous line repeated ",
)
_FENCE: Final = _compile(("```", r"\n[ \t]{0,3}```"), ("~~~", r"\n[ \t]{0,3}~~~"))
_FILE_EXT: Final = _compile(
    (
        ".",
        r"\.(?<=[\w*]\.)(?:py|js|mjs|ts|tsx|jsx|rs|go|java|kt|cpp|hpp|cc|cs|rb|php|swift|scala|"
        r"sh|bash|ps1|sql|html|css|scss|json|ya?ml|toml|ipynb|lua|dart|exs?|erl|hs|clj|vue|svelte|"
        r"tf|gradle|c|h)\b(?![.\w])",
    ),
    (" .", r" \.(?:py|js|ts|rs|go|java|cpp|sh|sql|json|ya?ml|toml|log|csv|jpe?g|png)\b"),
)
_CODE_SYMBOL: Final = _compile("c++", "c#", "f#", (".net", r"\.net\b"), "node.js", "objective-c")
_MATH_SYMBOL_RE: Final = re.compile(r"[∑∫∂√∞≡≤≥≠∈∉⊂⊆∀∃∏∇±ℝℕℤℚℂΣ]")
_LATEX_RE: Final = re.compile(
    r"\\(?:frac|sum|int|sqrt|lim|mathbb|forall|exists|infty|cdot|leq|geq|neq|binom|partial)\b"
)
_ARITH: Final = _compile(
    (" ", r"\d ?[-+*/×÷] ?\(?-?\d"),
    ("^", r"\^\d"),
    ("% of ", r"% of \d"),
    *((f" {word} ", rf" {word} \d") for word in ("times", "plus", "minus")),
)
_EQUATION: Final = _compile(("=", r"=(?<=[\w)]=) ?-?[\w(]"), (" =", r" =(?<=[\w)] =) ?-?[\w(]"))
_MOD: Final = _compile(("mod", r"mod(?:ulo)? ?\(?\d"), ("k", r"k(?<=\dk) ?[-+] ?\d"))
_WORD_TARGET_RE: Final = re.compile(
    r"(\d{1,3}(?:[,.]\d{3})+|\d{1,6}) ?-? ?(?:words?|palabras|worter|mots|parole|palavras|слов|字)"
)
_LIST_ITEM_RE: Final = re.compile(r"\n[ \t]{0,8}(?:[-*•]|\d{1,2}[.)])[ \t]+\S")


@dataclass(frozen=True, slots=True)
class TextScan:
    """Everything the metadata step needs to know about one piece of text."""

    evidence: Evidence
    words: int
    """Words in the text (two unspaced characters count as one), estimated for long texts."""
    fence: bool
    syntax: int
    """How many distinct code-syntax patterns matched."""
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


def _any(patterns: Sequence[_Pattern], text: str) -> bool:
    for needle, pattern in patterns:
        if needle in text and (pattern is None or pattern.search(text) is not None):
            return True
    return False


def _instruction(text: str) -> str:
    """The parts of a long turn that are likely its instruction rather than pasted material.

    That is its first paragraph (cut to ``KEYWORD_HEAD_CHARS``) and its last paragraph when that
    is short (an instruction after the paste); a turn without paragraphs gives its two ends.
    """
    head_end = text.find("\n\n", 0, KEYWORD_HEAD_CHARS)
    head = text[: KEYWORD_HEAD_CHARS if head_end < 0 else head_end]
    tail_start = text.rfind("\n\n", len(text) - KEYWORD_TAIL_CHARS)
    if tail_start >= 0:
        return head + "\n" + text[tail_start:]
    if head_end >= 0:
        return head
    return head + "\n" + text[len(text) - KEYWORD_TAIL_CHARS // 2 :]


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
    unspaced = _UNSPACED_RE.search(folded) is not None
    tokens = tokenize(folded, unspaced=unspaced)
    evidence = LEXICON.scan(folded, tokens, unspaced=unspaced)
    words = len(tokens) + (evidence.unspaced_chars + 1) // 2
    if keyword_text is not text:
        words = max(words, len(text) // 6)
    target = 0
    if "word" in folded or unspaced or "palabra" in folded or "mot" in folded:
        for match in _WORD_TARGET_RE.finditer(folded):
            target = max(target, int(match.group(1).replace(",", "").replace(".", "")))
    return TextScan(
        evidence=evidence,
        words=words,
        fence=_any(_FENCE, detect_text),
        syntax=sum(1 for family in _SYNTAX if _any(family, detect_text)),
        trace=_any(_TRACE, detect_text),
        file_ext=_any(_FILE_EXT, detect_text),
        code_symbol=_any(_CODE_SYMBOL, folded),
        math_symbols=(
            _MATH_SYMBOL_RE.search(keyword_text) is not None
            or _LATEX_RE.search(keyword_text) is not None
        ),
        arithmetic=_any(_ARITH, folded),
        equation=_any(_EQUATION, folded),
        modular=_any(_MOD, folded),
        word_target=target,
        list_items=len(_LIST_ITEM_RE.findall(detect_text)),
        question="?" in keyword_text or "？" in keyword_text or "¿" in keyword_text,
    )
