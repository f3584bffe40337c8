"""The keyword groups of the routing signals, and the per-language files that fill them.

Each language is one TOML file in this package (``en.toml``, ``de.toml``, ...)::

    language = "German"                  # its name, for people and error messages
    word_units = ["Wort", "Wörter"]      # "2000 Wörter" asks for a length (TextScan.word_target)
    number_multipliers = { k = 1000 }    # optional: "2k words"
    length_connectors = ["de"]           # optional (Romanian): "1500 de cuvinte"
    units_before_number = ["maneno"]     # optional (Swahili): word units a number may follow
    affirm_openers = ["はい"]             # optional: a yes that counts only where a turn opens

    [groups]
    greet = ["hallo", "guten {morgen,tag,abend}"]
    lookup = ["was ist", "wer ist"]

A group name must be a :class:`KeywordGroup`; a language defines only the groups it has words for.
Phrases are matched as whole words after case and accent folding (:mod:`.folding`), so each is
written once, with or without accents; ``{a,b}`` expands to alternatives. In scripts without
spaces between words (Chinese, Japanese, Thai), with particles glued to words (Korean), or whose
vowel signs are not word characters for ``re`` (Hindi, Marathi, Bengali, Tamil, Telugu) a phrase
is matched as a substring instead (:data:`.folding.UNSPACED_CLASS`).

Every file is read and checked once, when this module is imported: an unknown group, a group whose
value is not a non-empty list of phrases, a phrase listed twice, an unknown key or a file that is
not TOML stops start-up with a :class:`LexiconError` naming the file and the problem, rather than
silently matching nothing. Adding a language is adding one file (see ``docs/routing.md``).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

from octoroute.routing.lexicon.folding import UNSPACED_RE, expand_braces, fold, phrase_key


class KeywordGroup(StrEnum):
    """The keyword groups the signals read: every group name a language file may use.

    Values are the names used in the files and in :attr:`Evidence.counts
    <octoroute.routing.signals.Evidence.counts>`; as a ``str`` enum a member equals its name.
    """

    GREET = "greet"
    """Greetings ("hi", "guten Tag")."""
    THANKS = "thanks"
    SMALLTALK = "smalltalk"
    """Chit-chat, acknowledgements and sign-offs ("how are you", "ok", "bye")."""
    FILLER = "filler"
    """Words that carry no task inside small talk ("so", "really"): they only count towards how
    much of a turn is conversational."""
    URGENCY = "urgency"
    """Urgency, which does not make a task harder ("asap")."""
    BRIEF = "brief"
    """Asks for a short answer ("in one sentence")."""
    DEPTH = "depth"
    """Asks for depth or rigour ("step by step", "in detail")."""
    LOOKUP = "lookup"
    """Opens a factual lookup ("what is", "capital of"); where it first occurs is recorded."""
    EXPLAIN = "explain"
    AFFIRM = "affirm"
    """A yes to an offer ("yes please", "go ahead")."""
    PROCEED = "proceed"
    """Asks to go on ("continue", "next")."""
    FOLLOWUP = "followup"
    """Words that point back into the thread ("and", "what if", "it")."""
    CODE_STRONG = "code_strong"
    """Unambiguous programming terms (two points of code evidence)."""
    CODE_WEAK = "code_weak"
    """Words often, but not only, about code ("function", "Python"): one point."""
    CODE_PHRASE = "code_phrase"
    """Phrases that ask for code ("write a function", "in Rust"): two points."""
    CODE_NEG = "code_neg"
    """Phrases that look like code and are not ("postal code"): minus one point."""
    CODE_HARD = "code_hard"
    """Hard programming topics (lock-free, compilers): code that goes deep."""
    CODE_PERF = "code_perf"
    """Performance and scale demands; two of them make code hard."""
    MATH = "math"
    MATH_CONTEXT = "math_context"
    """Words that make "prove" mathematical ("for every", "vertices") without being maths."""
    MATH_HARD = "math_hard"
    PROOF = "proof"
    DESIGN = "design"
    SECURITY = "security"
    CONCURRENCY = "concurrency"
    AREA_STRONG = "area_strong"
    """Terms that on their own mark design, security or concurrency work."""
    ANALYSIS = "analysis"
    SUMMARY = "summary"
    CREATIVE_SHORT = "creative_short"
    """Short creative forms (haiku, joke, slogan)."""
    CREATIVE = "creative"
    CREATIVE_LONG = "creative_long"
    """Long or demanding creative forms (novel chapter, villanelle)."""
    WRITE_VERB = "write_verb"
    """Asks for something to be written or made ("write", "compose")."""
    CODE_NOUN = "code_noun"
    """Things one writes in code ("function", "script"): with a write verb, a coding task."""
    TRANSLATE = "translate"
    HOWTO = "howto"
    TOPIC_CHANGE = "topic_change"
    """Marks a new topic ("by the way"): a short turn after it does not inherit the thread."""
    STAKES = "stakes"
    """Domain words of questions with real consequences ("dose", "landlord", "visa", "mortgage"):
    medicines and symptoms, leases, dismissal, residence, inheritance, lawsuits, tax, loans and
    pensions. Such a question, however briefly and casually asked, needs the deep tier (the
    labelling policy's "high-stakes analysis"). Only the learned model's ``cue`` namespace reads
    this group (its one-word phrases, and the substrings of the scripts matched by substring);
    no rule does, so its multi-word phrases count only in :attr:`Evidence.counts
    <octoroute.routing.signals.Evidence.counts>`."""


GroupName = Literal[
    "greet", "thanks", "smalltalk", "filler", "urgency", "brief", "depth", "lookup", "explain",
    "affirm", "proceed", "followup", "code_strong", "code_weak", "code_phrase", "code_neg",
    "code_hard", "code_perf", "math", "math_context", "math_hard", "proof", "design", "security",
    "concurrency", "area_strong", "analysis", "summary", "creative_short", "creative",
    "creative_long", "write_verb", "code_noun", "translate", "howto", "topic_change", "stakes",
]  # fmt: skip
"""The values of :class:`KeywordGroup` as a type, for code that reads :attr:`Evidence.counts
<octoroute.routing.signals.Evidence.counts>` by name: mypy then checks each name, and the lookup
stays a plain-string one (an enum member hashes ~4x slower). A test keeps the two equal."""


class LexiconError(ValueError):
    """A keyword file is not valid; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Language:
    """One language file, checked: every phrase already expanded and in its matched form."""

    code: str
    """The file name without ``.toml`` (``en``)."""
    name: str
    groups: Mapping[KeywordGroup, tuple[str, ...]]
    """Group -> its phrases in the form they are matched in (:func:`.folding.phrase_key`)."""
    word_units: tuple[str, ...]
    """Folded words that make a preceding number a requested length ("words", "字")."""
    number_multipliers: Mapping[str, int]
    """Folded suffixes that multiply that number ("k": 1000, "万": 10000)."""
    length_connectors: tuple[str, ...] = ()
    """Folded words that may stand between the number and the unit (Romanian "1500 de
    cuvinte": "de" is required after a number of 20 or more)."""
    units_before_number: tuple[str, ...] = ()
    """Folded word units that also make a FOLLOWING number a length, for languages that put
    the number after the noun (Swahili "insha ya maneno 500"); each is one of ``word_units``."""
    affirm_openers: tuple[str, ...] = ()
    """Phrases that say yes to an assistant's offer when they open the user's turn (Japanese
    "はい", Chinese "好", Korean "네"), besides the ``affirm`` and ``proceed`` groups: words too
    common inside other words to be a keyword anywhere (:mod:`~octoroute.routing.acceptance`)."""


_KEYS: Final = frozenset(
    {
        "language",
        "word_units",
        "number_multipliers",
        "length_connectors",
        "units_before_number",
        "affirm_openers",
        "groups",
    }
)
_GROUPS: Final = {group.value: group for group in KeywordGroup}


def parse_language(source: str, text: str) -> Language:
    """Check one language file's ``text``; ``source`` is its file name, for the errors."""
    code = source.rsplit("/", 1)[-1].removesuffix(".toml")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LexiconError(f"{source}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise LexiconError(
            f"{source}: unknown key {unknown[0]!r} (a language file has: {', '.join(sorted(_KEYS))})"
        )
    name = data.get("language")
    if not isinstance(name, str) or not name.strip():
        raise LexiconError(f'{source}: `language` must name the language (language = "English")')
    raw_groups = data.get("groups")
    if not isinstance(raw_groups, dict):
        raise LexiconError(f"{source}: no [groups] table: a language file lists its keyword groups")
    if not raw_groups:
        raise LexiconError(f"{source}: [groups] is empty: a language file needs at least one group")
    groups: dict[KeywordGroup, tuple[str, ...]] = {}
    for group_name, phrases in raw_groups.items():
        group = _GROUPS.get(group_name)
        if group is None:
            raise LexiconError(f"{source}: {_unknown_group(group_name)}")
        groups[group] = _phrases(source, f"group {group_name!r}", phrases)
    units = _phrases(source, "`word_units`", data.get("word_units", []), units=True)
    connectors = _phrases(
        source, "`length_connectors`", data.get("length_connectors", []), units=True
    )
    if any(UNSPACED_RE.search(connector) for connector in connectors):
        raise LexiconError(
            f"{source}: `length_connectors` are for scripts with spaces: a word between the "
            "number and the unit"
        )
    before = _phrases(
        source, "`units_before_number`", data.get("units_before_number", []), units=True
    )
    stray = [unit for unit in before if unit not in units]
    if stray:
        raise LexiconError(
            f"{source}: `units_before_number`: {stray[0]!r} is not one of `word_units`; list it "
            "there too (it is a unit that may also come before its number)"
        )
    if any(UNSPACED_RE.search(unit) for unit in before):
        raise LexiconError(
            f"{source}: `units_before_number` are for scripts with spaces: the number is a "
            "separate word after the unit"
        )
    raw_openers = data.get("affirm_openers")
    openers = () if raw_openers is None else _phrases(source, "`affirm_openers`", raw_openers)
    return Language(
        code, name.strip(), groups, units, _multipliers(source, data), connectors, before, openers
    )


def _unknown_group(name: str) -> str:
    close = difflib.get_close_matches(name, list(_GROUPS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown keyword group {name!r}{hint}; the groups are: {', '.join(_GROUPS)}"
        " (octoroute.routing.lexicon.KeywordGroup)"
    )


def _phrases(source: str, what: str, value: Any, *, units: bool = False) -> tuple[str, ...]:
    """The matched forms of a list of phrases; ``units``: single words (word units, length
    connectors), and the list may be empty."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LexiconError(f'{source}: {what} must be a list of strings, like ["a", "b"]')
    if not value and not units:
        raise LexiconError(f"{source}: {what} is empty: list its phrases or leave the group out")
    seen: dict[str, str] = {}
    for raw in value:
        try:
            expanded = expand_braces(raw)
        except ValueError as error:
            raise LexiconError(f"{source}: {what}: {error}") from None
        for phrase in expanded:
            key = phrase_key(phrase)
            if not key:
                raise LexiconError(f"{source}: {what} has a phrase with no letters: {raw!r}")
            if units and " " in key and not UNSPACED_RE.search(key):
                raise LexiconError(f"{source}: {what}: {raw!r} is not a single word")
            if key in seen:
                same = "" if seen[key] == phrase else f" (as {seen[key]!r} and {phrase!r})"
                raise LexiconError(
                    f"{source}: {what} lists {key!r} twice{same}: phrases are compared after "
                    "case and accent folding, with punctuation as a word break"
                )
            seen[key] = phrase
    return tuple(seen)


def _multipliers(source: str, data: Mapping[str, Any]) -> dict[str, int]:
    value = data.get("number_multipliers", {})
    if not isinstance(value, dict) or not all(
        isinstance(factor, int) and not isinstance(factor, bool) and factor > 1
        for factor in value.values()
    ):
        raise LexiconError(
            f"{source}: `number_multipliers` must map suffixes to whole numbers above 1, "
            "like { k = 1000 }"
        )
    out: dict[str, int] = {}
    for suffix, factor in value.items():
        key = fold(suffix).strip()
        if not key or " " in key:
            raise LexiconError(f"{source}: `number_multipliers`: {suffix!r} is not one word")
        out[key] = factor
    return out


DIRECTORY: Final = Path(__file__).parent
"""Where the shipped keyword files are (installed with the package)."""


def load_languages(files: Iterable[Path] | None = None) -> tuple[Language, ...]:
    """Read and check every ``*.toml`` keyword file of this package (or ``files``), by name.

    Besides each file's own checks, every :class:`KeywordGroup` must be filled by some file: a
    group nobody fills would never fire.
    """
    if files is None:
        files = DIRECTORY.iterdir()
    chosen = sorted((path for path in files if path.suffix == ".toml"), key=_name)
    languages = []
    for path in chosen:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise LexiconError(f"{path.name}: cannot read keyword file: {error}") from None
        languages.append(parse_language(path.name, text))
    if not languages:
        raise LexiconError(f"no keyword files (*.toml) in {DIRECTORY}")
    filled = {group for language in languages for group in language.groups}
    missing = [group.value for group in KeywordGroup if group not in filled]
    if missing:
        raise LexiconError(
            f"keyword group {missing[0]!r} has phrases in no language file "
            f"({', '.join(language.code + '.toml' for language in languages)})"
        )
    return tuple(languages)


def _name(path: Path) -> str:
    return path.name


LANGUAGES: Final = load_languages()
"""Every shipped language, checked, in file-name order; read once, at import."""
