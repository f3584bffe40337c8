"""A requested length ("2000 words", "500 Wörter", "800字"), from the language files' word units.

A length is a number followed by a unit word of any language file (``word_units``): as its own
word in scripts with spaces ("500 words", "2,000-word", "2.000 Wörter", "1.5k words"), or right
after the number in scripts without ("800字", "500단어"). Thousands may be grouped with ``,`` ``.``
``'`` or a (narrow) space ("2 000 mots", so "3 300-word essays" reads as 3300: a longer target is
the cheaper mistake); a ``number_multipliers`` suffix, optionally abbreviated with a dot,
multiplies ("2k", "2 tis. slov", "1万字"). A ``length_connectors`` word may stand between the
number and a spaced unit (Romanian "1500 de cuvinte"). A ``units_before_number`` unit may also
come first, then a space or a colon and the number (Swahili "insha ya maneno 500"). The text is
the folded text the keywords are matched in, so units match without their accents ("worter").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from octoroute.routing.lexicon import Language
from octoroute.routing.lexicon.folding import UNSPACED_RE

_NUMBER: Final = r"(\d(?<!\d\d)(?:\d{0,2}(?:[,.'\u00a0\u202f\u2009 ]\d{3})+|\d{0,5}))(?:[.,](\d))?"
r"""Digits, grouped in thousands or up to six, and one decimal (used only with a multiplier).

The first digit is matched before anything else, and "no digit before it" is checked after it
(``\d(?<!\d\d)``, not ``(?<!\d)\d``): a pattern that starts with a character class lets ``re``
skip in C to the next digit, where a leading look-behind made it try every position of the
text (4x slower on 1.5 KB). The language and the order of backtracking are those of
``(?<!\d)(\d{1,3}(?:[sep]\d{3})+|\d{1,6})``: ``\d`` then ``\d{0,2}`` tries 3, 2, 1 leading
digits as ``\d{1,3}`` does (``tests/unit/test_routing_detectors.py`` compares the two)."""
_GROUPING: Final = re.compile(r"[,.'\u00a0\u202f\u2009 ]")


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=lambda w: (-len(w), w)))


class LengthMatcher:
    """Finds the largest requested length in a folded text; built once from the languages."""

    def __init__(self, languages: Iterable[Language]) -> None:
        languages = tuple(languages)
        units = {unit for language in languages for unit in language.word_units}
        spaced = {unit for unit in units if not UNSPACED_RE.search(unit)}
        unspaced = units - spaced
        self._multipliers = {
            suffix: factor
            for language in languages
            for suffix, factor in language.number_multipliers.items()
        }
        self._unit_words = frozenset(spaced)
        self._unspaced_units = tuple(sorted(unspaced))
        multiplier = (
            f"(?: ?({_alternation(self._multipliers)})\\.?)?" if self._multipliers else "()"
        )
        connectors = {word for language in languages for word in language.length_connectors}
        connector = f"(?:[ ](?:{_alternation(connectors)})(?=[ ]))?" if connectors else ""
        alternatives = []
        if spaced:
            # an optional connector word, at least one separator, then the unit as a whole word
            alternatives.append(
                f"{connector}(?=[ -])[ ]?-?[ ]?(?:{_alternation(spaced)})(?![^\\W\\d_])"
            )
        if unspaced:
            alternatives.append(f"[ ]?-?[ ]?(?:{_alternation(unspaced)})")
        self._pattern = (
            re.compile(_NUMBER + multiplier + "(?:" + "|".join(alternatives) + ")")
            if alternatives
            else None
        )
        before = {unit for language in languages for unit in language.units_before_number}
        self._before_words = frozenset(before)
        # the unit as a whole word, a space or a colon, then the number as a whole word
        self._before_pattern = (
            re.compile(
                f"(?<![^\\W\\d_])(?:{_alternation(before)})(?:[ ]|:[ ]?)"
                + _NUMBER
                + multiplier
                + "(?![^\\W_])"
            )
            if before
            else None
        )

    def target(self, folded: str, tokens: Sequence[str], *, unspaced: bool) -> int:
        """The largest length ``folded`` asks for, 0 if none.

        ``tokens`` are its words and ``unspaced`` whether it has unspaced characters, as the scan
        found them: the regex only runs when a unit occurs and the text has a digit.
        """
        pattern = self._pattern
        if pattern is None:
            return 0
        if self._unit_words.isdisjoint(tokens) and not (
            unspaced and any(unit in folded for unit in self._unspaced_units)
        ):
            return 0
        matches = list(pattern.finditer(folded))
        before = self._before_pattern
        if before is not None and not self._before_words.isdisjoint(tokens):
            matches += before.finditer(folded)
        return max(map(self._value, matches), default=0)

    def _value(self, match: re.Match[str]) -> int:
        digits, decimal, suffix = match.group(1, 2, 3)
        value = int(_GROUPING.sub("", digits))
        if suffix:
            factor = self._multipliers[suffix]
            value = value * factor + (int(decimal) * factor // 10 if decimal else 0)
        return value
