"""How text and keyword phrases are normalised before they are compared: folding and words.

The keyword files and the scan must agree on this exactly, so both use these functions: a phrase
is loaded as the words :func:`tokenize` finds in its :func:`fold`, and a request is matched word by
word after the same two steps. Scripts written without spaces between words (CJK, Korean), and
the Indic scripts whose vowel signs ``re`` does not count as letters (Hindi and Marathi, Bengali,
Tamil, Telugu: :data:`UNSPACED_CLASS`), have no word boundary to split at, so their phrases are
kept whole and matched as substrings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, TypeVar

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
_FOLDED_RE: Final = re.compile("[" + "".join(sorted(_FOLD_TO)) + "]")
"""Any character :data:`_FOLD` maps."""

UNSPACED_CLASS: Final = (
    "\u0900-\u09ff\u0b80-\u0c7f\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff"
)
"""A regex character class of the scripts matched by substring (Devanagari, Bengali, Tamil,
Telugu, Thai, Hangul, kana, CJK ideographs). In the Indic scripts the vowel signs and the virama
are not word characters for ``re``, so splitting into words would cut every word into pieces
(Tamil வணக்கம், "hello", into வணக + கம; Telugu ధన్యవాదాలు, "thanks", into four)."""
UNSPACED_RE: Final = re.compile(f"[{UNSPACED_CLASS}]")
SPACED_SCRIPTS_CLASS: Final = "\u0900-\u09ff\u0b80-\u0c7f"
"""The scripts of :data:`UNSPACED_CLASS` that put spaces between words (Devanagari, Bengali,
Tamil, Telugu): matched by substring for their vowel signs, but a run of them is a word."""
_SPACED_SCRIPT_RE: Final = re.compile(f"[{SPACED_SCRIPTS_CLASS}]")
_SPACED_RUN_RE: Final = re.compile(f"[{SPACED_SCRIPTS_CLASS}]+")


def spaced_script_runs(text: str) -> list[str]:
    """The runs of :data:`SPACED_SCRIPTS_CLASS` characters in ``text``: one per word of those
    scripts (none, after one C search, for text without them)."""
    if _SPACED_SCRIPT_RE.search(text) is None:
        return []
    return _SPACED_RUN_RE.findall(text)


def unspaced_word_count(folded: str, beyond: str, unspaced_chars: int) -> int:
    """How many words the ``unspaced_chars`` characters of :data:`UNSPACED_CLASS` in ``folded``
    make (``beyond``: :func:`searchable_beyond_ascii` of it, or ``folded``).

    Chinese, Japanese, Thai and Korean count one word per two characters, about what a word of
    theirs holds. Hindi, Marathi, Bengali, Tamil and Telugu put spaces between words, so each run
    of them is a word: counted per two characters, "हाँ, कर दो" ("yes, do it") made 4 words and a
    ten-word question 25, and a short question was not short."""
    if _SPACED_SCRIPT_RE.search(beyond) is None:
        return (unspaced_chars + 1) // 2
    runs = spaced_script_runs(folded)
    spaced_chars = sum(map(len, runs))
    return len(runs) + (max(unspaced_chars - spaced_chars, 0) + 1) // 2


GREEK_LETTER_CLASS: Final = "\u0370-\u03ff\u1f00-\u1fff"
"""A regex character class of the Greek letters (Greek and Coptic, Greek Extended)."""
GREEK_QUESTION_RE: Final = re.compile(f";(?<=[{GREEK_LETTER_CLASS}];)(?!\\S)")
"""A ``;`` that is a Greek question mark: right after a Greek letter and at the end of a sentence
(before white space or the end of the text). Greek writes its question mark as ``;``; in code a
``;`` follows an identifier, a digit, a bracket or a quote, so code keeps its ``;``, Greek
comments and string literals included. The ``;`` comes first so that ``re`` skips to it in C."""
_WORD_RE: Final = re.compile(f"[^\\W_{UNSPACED_CLASS}]+")
_BRACE_RE: Final = re.compile(r"\{([^{}]*)\}")
_ASCII_SPLIT: Final = bytes(byte if chr(byte).isalnum() else 0x20 for byte in range(128)) + bytes(
    [0x20] * 128
)
"""For ASCII text: letters and digits kept, everything else (controls too) to a space."""


_ASCII_BYTES: Final = bytes(range(128))
_SAMPLE_CHARS: Final = 256


def beyond_ascii(text: str) -> str:
    """The characters of ``text`` outside ASCII, in order, found by C loops only.

    Deleting the ASCII bytes of the UTF-8 encoding leaves whole multi-byte sequences, so the
    rest decodes to exactly those characters (lone surrogates, which JSON can carry, pass
    through). Far cheaper than a regex over English text with a few dashes or stars in it.
    """
    encoded = text.encode("utf-8", "surrogatepass")
    return encoded.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


def searchable_beyond_ascii(text: str) -> str:
    """What a search for a class of characters beyond ASCII needs to read of ``text``: its
    characters beyond ASCII (:func:`beyond_ascii`), or ``text`` itself when most of it is (a
    Chinese or Russian text), where cutting the ASCII out would cost more than it saves. A
    search of either finds the same characters in the same order. Which one is judged from the
    text's first :data:`_SAMPLE_CHARS` characters, so a Chinese text is not encoded whole."""
    sample = text[:_SAMPLE_CHARS]
    encoded = sample.encode("utf-8", "surrogatepass")
    if len(encoded) >= 2 * len(sample):
        return text
    if len(text) > _SAMPLE_CHARS:
        encoded = text.encode("utf-8", "surrogatepass")
    return encoded.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
MATCHABLE_STANDIN: Final = "\ufffd"
"""What :func:`matchable` puts in place of a lone surrogate: no phrase or probe holds it."""


def matchable(text: str) -> str:
    """``text`` with each lone surrogate (JSON can carry one) replaced by U+FFFD, which the
    compiled matchers can read (they take UTF-8, which has no surrogates). One character for
    one: positions stay, and since no phrase or literal holds either character, so do matches.
    Called only after a matcher refused a text (:func:`overlapping_matches`)."""
    return _SURROGATE_RE.sub(MATCHABLE_STANDIN, text)


_Found = TypeVar("_Found")


def overlapping_matches(find: Callable[..., _Found], text: str) -> _Found:
    """``find(text, overlapping=True)``, ``find`` being a compiled matcher's search
    (``ahocorasick_rs``' ``find_matches_as_indexes`` or ``find_matches_as_strings``); a text it
    refuses for a lone surrogate is searched again as :func:`matchable` makes it."""
    try:
        return find(text, overlapping=True)
    except UnicodeEncodeError:
        return find(matchable(text), overlapping=True)


def greek_question_marks(text: str) -> int:
    """How many ``;`` of ``text`` are Greek question marks (:data:`GREEK_QUESTION_RE`); two C
    checks and no regex for text without a ``;`` or without a character beyond ASCII."""
    if ";" not in text or text.isascii():
        return 0
    return len(GREEK_QUESTION_RE.findall(text))


QUESTION_MARKS: Final = ("?", "？", "؟")
"""The question marks other than the Greek ``;``: ASCII, the full-width one of Chinese and
Japanese, and the Arabic one (Arabic, Persian, Urdu)."""


def question_marks(text: str) -> int:
    """How many of :data:`QUESTION_MARKS` ``text`` holds (the Greek ``;`` apart: a reader that
    also counts code punctuation needs that one on its own, :func:`greek_question_marks`)."""
    return sum(map(text.count, QUESTION_MARKS))


def asks_question(text: str) -> bool:
    """Whether ``text`` holds a question mark: one of :data:`QUESTION_MARKS` or a Greek ``;``.

    One definition for every reader (the ``question`` signal, the ``offer`` cue, a "yes" that
    accepts an offer), so a question in Arabic or Chinese is a question everywhere."""
    return any(map(text.__contains__, QUESTION_MARKS)) or greek_question_marks(text) > 0


def tokenize(folded: str, *, unspaced: bool, beyond: str | None = None) -> list[str]:
    """The words of ``folded`` text, split at anything that is not a letter or digit.

    ``unspaced``: whether the text may hold characters of :data:`UNSPACED_CLASS` (they are never
    part of a word); ``False`` is only a promise the caller may make for text without them.
    ``beyond``: :func:`searchable_beyond_ascii` of ``folded``, when the caller has it.
    """
    if folded.isascii() and not unspaced:
        # the same words, ~3x faster: bytes.translate maps every ASCII non-alphanumeric to space
        return folded.encode("ascii").translate(_ASCII_SPLIT).decode("ascii").split()
    if beyond is None:
        beyond = searchable_beyond_ascii(folded)
    if _WORD_RE.search(beyond) is None:
        # Every character beyond ASCII separates words (a dash, a star, a CJK character): as
        # "?" it still does, and the ASCII path gives the same words ~10x faster than the regex.
        return folded.encode("ascii", "replace").translate(_ASCII_SPLIT).decode("ascii").split()
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
    # in C, 3-4x faster on 200 characters. No replacement is itself folded: order is free. The
    # letters present are found by a regex character class (a C scan, ~4x faster on 1.5 KB than
    # hashing every character into a set) over the characters beyond ASCII only, which is all of
    # them in Russian but a few dashes and quotes in English.
    for char in set(_FOLDED_RE.findall(searchable_beyond_ascii(lowered))):
        lowered = lowered.replace(char, _FOLD_TO[char])
    return lowered


def expand_braces(phrase: str) -> list[str]:
    """``good {morning,night}`` -> ``["good morning", "good night"]``.

    Raises :class:`ValueError` for a brace that is not closed or not opened.
    """
    match = _BRACE_RE.search(phrase)
    if match is None:
        if "{" in phrase or "}" in phrase:
            raise ValueError(f"unbalanced braces in {phrase!r}")
        return [phrase.strip()]
    head, tail = phrase[: match.start()], phrase[match.end() :]
    out: list[str] = []
    for alternative in match.group(1).split(","):
        out.extend(expand_braces(head + alternative + tail))
    return out


def phrase_key(phrase: str) -> str:
    """The form a phrase is matched in: its folded words joined by one space, or, in an
    unspaced script, the folded phrase itself (a substring). Empty when it has no words."""
    folded = fold(phrase).strip()
    if UNSPACED_RE.search(folded):
        return folded
    return " ".join(tokenize(folded, unspaced=False))
