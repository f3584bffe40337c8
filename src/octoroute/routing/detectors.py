"""Regex detectors for code, stack traces, file names and formulas, gated by one-character checks.

A *family* (``fence``, ``trace``, one per kind of code syntax, ...) fires when any of its *probes*
matches. A probe is a literal ``needle`` that must occur in the text and, optionally, a regex that
must then match too. Checking ~90 needles one after the other costs ~0.5 µs each on a 1 KB prompt
(``str.__contains__`` reads the whole text every time), which made this the most expensive part of
a routing decision. So every probe that can be is filed under a **gate**: one character that every
one of its matches contains, chosen among punctuation that prose rarely has (``(``, ``=``, ``{``,
``"``). Testing a one-character gate is a ``memchr`` (~35 ns), and a probe is tried only when its
gate occurs; a family already fired is not tried again. Probes that need a decimal digit are tried
only when the text has one. The rest (``Segmentation fault``, ``import``) are tried always.

For the code detectors, every needle and gate longer than one character is then looked up in a
set: the literals a text holds are found at once by one pass of an Aho-Corasick automaton
(``ahocorasick_rs``, compiled Rust) built at import, ~2.5 ns a character of a 3 KB paste for all
~50 of them, where a search each cost ~0.6 ns a character per literal; and only the probes whose
needle occurs are visited (one-character needles by a search each), not every gate. Texts up to
64 characters, and families with few literals (file names, formulas), keep the walk over the
gates, which costs them less (issue #19, docs/performance.md).

The gates make the work cheaper, never the answer different: a gate is derived from the needle, or
stated next to a regex that cannot match without it (``def f(`` needs ``(``), and
``tests/unit/test_routing_detectors.py`` checks every family against an ungated evaluation.

Every regex starts with a literal (or an alternation of literals), or for the arithmetic one a
character class, so ``re`` can skip ahead with its prefix search; boundary checks come after the
literal as look-behinds, and repetition is bounded, so none can backtrack catastrophically.
Indentation before a literal is matched possessively (``[ \t]*+``): what follows it is never a
blank, so the matches are the same and ``re`` does not retry every shorter indentation.
Line-start patterns look for "\\n" (the scanned text always starts with one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, NamedTuple

from ahocorasick_rs import AhoCorasick, Implementation

from octoroute.routing.lexicon.folding import GREEK_LETTER_CLASS, overlapping_matches

_GATE_ORDER: Final = '`~\\^|&$@%#;{}[]<>=*+!"XZQJVKYUGO():/ENLRDFPMCBHWSAIT-.'
"""Characters an automatic gate may be, rarest in prose first (punctuation, then capitals)."""
_EARLY_GATES: Final = "({=;"
"""Gates tried before the rarity order: behind them are the syntax probes that fire on most
code (calls, bindings, ``;`` line ends), so a pasted file stops being searched sooner."""
DIGIT: Final = "0-9"
"""The gate of a probe that cannot match without a decimal digit (``\\d``)."""


class Probe(NamedTuple):
    """A needle that must occur, an optional regex that must then match, and their gates."""

    needle: str
    pattern: re.Pattern[str] | None
    gates: tuple[str, ...]
    """Literals of which every match contains at least one (or :data:`DIGIT`); ``()``: none."""


def probe(
    needle: str, regex: str | None = None, *, gate: str | tuple[str, ...] | None = None
) -> Probe:
    """A probe. ``gate``: a literal every match contains, or a tuple of which each match has one;
    by default the rarest gate character of ``needle``."""
    if gate is None:
        gate = next((char for char in _GATE_ORDER if char in needle), ())
    return Probe(needle, None if regex is None else re.compile(regex), _gates(gate))


def _gates(gate: str | tuple[str, ...]) -> tuple[str, ...]:
    return (gate,) if isinstance(gate, str) else gate


_Entry = tuple[int, str, bool, "re.Pattern[str] | None"]
"""A probe as :meth:`Detectors.run` tries it: its family's bit, its needle, whether the needle is
longer than one character (so the automaton finds it, where there is one), its regex."""
_CHAR, _LITERAL, _ANY, _DIGIT, _ALWAYS = range(5)
"""Kinds of gate: one character (``in`` the text), a longer literal (among those found), any of
several characters or literals, a decimal digit, none."""
_Group = tuple[int, str, tuple[str, ...], tuple[str, ...], tuple[_Entry, ...], int]
"""What :meth:`Detectors.run` walks: a gate's kind, its literal (``_CHAR``, ``_LITERAL``), its
characters and longer literals (``_ANY``), the probes behind it, the union of their bits."""
_Candidate = tuple[int, int, int, str, tuple[str, ...], tuple[str, ...], "re.Pattern[str] | None"]
"""A probe as :meth:`Detectors._run_found` tries it: its order, its family's bit, its gate's
kind, literal, characters and longer literals, its regex."""
_AUTOMATON_LITERALS: Final = 16
"""Families with fewer literals longer than one character than this search for each: on texts
of 64 to 4,000 characters a pass of the automaton cost as much as six or twelve searches (the
``code_symbol`` family, the formula detectors) and more than one (file names); the code
detectors' ~50 literals cost 3-4x less in one pass."""
_FEW_CHARS: Final = 64
"""Texts up to this long find their gates by one set intersection (a hash per character) rather
than one search per gate: a short turn or sign-off, where most gates are absent. Their longer
literals are looked for by ``in`` as well: cheaper than a pass of the automaton on so little."""
_PRESENT_SETS_MAX: Final = 4096
"""How many sets of present gates are remembered with their groups (a fixed bound on memory)."""


def has_digit(text: str) -> bool:
    """Whether ``text`` may contain a decimal digit (exact for ASCII, ``True`` otherwise)."""
    if not text.isascii():
        return True
    # ten ``in`` tests (a memchr each): 4x faster than ``any(map(text.__contains__, ...))``,
    # which calls a method wrapper per digit, and 20x faster than ``\d`` on 1 KB, which ``re``
    # cannot skip to
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


class Detectors:
    """Named families of probes, evaluated together into a bit mask of the families that fired.

    ``enough=(names, count)`` says the caller only asks whether at least ``count`` of the named
    families fired: once that many have, the others are not tried (on a pasted module most
    syntax families fire, and each costs a full read of the text).
    """

    def __init__(
        self,
        families: Sequence[tuple[str, Sequence[Probe]]],
        *,
        enough: tuple[Sequence[str], int] | None = None,
    ) -> None:
        self._bits = {name: 1 << index for index, (name, _) in enumerate(families)}
        names, self._enough = enough if enough is not None else ((), 0)
        self._capped = self.bits(*names)
        gated: dict[str, list[_Entry]] = {}
        either: dict[tuple[str, ...], list[_Entry]] = {}
        digit: list[_Entry] = []
        always: list[_Entry] = []
        for name, probes in families:
            bit = self._bits[name]
            for needle, pattern, gates in probes:
                entry = (bit, needle, len(needle) > 1, pattern)
                if not gates:
                    always.append(entry)
                elif gates == (DIGIT,):
                    digit.append(entry)
                elif len(gates) == 1:
                    gated.setdefault(gates[0], []).append(entry)
                else:
                    # any of several: tried once if any occurs (filing it under each gate would
                    # try a probe that does not match once per gate present)
                    either.setdefault(gates, []).append(entry)
        # one-character gates first (a memchr each), rarest first; longer literals last
        order = {char: index for index, char in enumerate(_GATE_ORDER)}
        order.update({char: index - len(_GATE_ORDER) for index, char in enumerate(_EARLY_GATES)})
        self._gated = tuple(
            (
                _CHAR if len(literal) == 1 else _LITERAL,
                literal,
                (),
                (),
                tuple(entries),
                _union(entries),
            )
            for literal, entries in sorted(
                gated.items(), key=lambda item: (len(item[0]), order.get(item[0], 0))
            )
        )
        self._either = tuple(
            (
                _ANY,
                "",
                tuple(gate for gate in gates if len(gate) == 1),
                tuple(gate for gate in gates if len(gate) > 1),
                tuple(entries),
                _union(entries),
            )
            for gates, entries in either.items()
        )
        self._digit = tuple(digit)
        self._always = tuple(always)
        groups: list[_Group] = [*self._gated, *self._either]
        if digit:
            groups.append((_DIGIT, "", (), (), self._digit, _union(digit)))
        if always:
            groups.append((_ALWAYS, "", (), (), self._always, _union(always)))
        self._groups = tuple(groups)
        self._gate_chars = frozenset(gate for kind, gate, _, _, _, _ in groups if kind == _CHAR)
        self._present_groups: dict[frozenset[str], tuple[_Group, ...]] = {}
        # Every needle and gate longer than one character, found in one pass over the text: a
        # search each (``str.__contains__`` reads the whole text every time) cost ~0.6 ns a
        # character per literal, ~50 literals over 3 KB of a pasted turn.
        literals = sorted(
            {needle for _, needle, multi, _ in (*digit, *always, *_flat(gated), *_flat(either))
             if multi}
            | {gate for gate in gated if len(gate) > 1}
            | {gate for gates in either for gate in gates if len(gate) > 1}
        )  # fmt: skip
        self._automaton = (
            AhoCorasick(literals, implementation=Implementation.DFA)
            if len(literals) >= _AUTOMATON_LITERALS
            else None
        )
        # For a text the automaton reads: each probe filed under its needle with its gate, in
        # the order they are tried (probes without a regex first: they fire for free).
        ranked = sorted(
            (
                (pattern is not None, group_index, entry_index),
                (bit, kind, gate, chars, gate_literals, pattern, needle, multi),
            )
            for group_index, (kind, gate, chars, gate_literals, entries, _) in enumerate(groups)
            for entry_index, (bit, needle, multi, pattern) in enumerate(entries)
        )
        by_literal: dict[str, list[_Candidate]] = {}
        by_char: dict[str, list[_Candidate]] = {}
        for rank, (bit, kind, gate, chars, gate_literals, pattern, needle, multi) in enumerate(
            candidate for _, candidate in ranked
        ):
            candidate = (rank, bit, kind, gate, chars, gate_literals, pattern)
            (by_literal if multi else by_char).setdefault(needle, []).append(candidate)
        self._by_literal = {literal: tuple(found) for literal, found in by_literal.items()}
        self._by_char = tuple((char, tuple(found)) for char, found in by_char.items())

    def _groups_for(self, present: frozenset[str]) -> tuple[_Group, ...]:
        """The groups worth visiting in a text whose one-character gates are ``present``: those
        behind a gate that occurs, a longer literal, a digit or none (remembered per set)."""
        found = self._present_groups.get(present)
        if found is None:
            found = tuple(
                group
                for group in self._groups
                if not (group[0] == _CHAR and group[1] not in present)
                and not (group[0] == _ANY and not group[3] and present.isdisjoint(group[2]))
            )
            if len(self._present_groups) < _PRESENT_SETS_MAX:
                self._present_groups[present] = found
        return found

    def bits(self, *names: str) -> int:
        """The mask of the named families."""
        mask = 0
        for name in names:
            mask |= self._bits[name]
        return mask

    def run(self, text: str, *, digit: bool | None = None) -> int:
        """The mask of every family with a probe that matches ``text``.

        Exact, except that when more than ``count`` of the ``enough`` families would fire, the
        mask may hold only some of them (never fewer than ``count``): read their number capped
        at ``count``. ``digit``: :func:`has_digit` of ``text``, when the caller knows it.

        ``done`` holds the bits not worth trying any more: fired, or all of the capped ones once
        ``enough`` of them fired. One loop with no call per group: on a short text the gates are
        most of the work.
        """
        if len(text) <= _FEW_CHARS:
            # one set intersection instead of a loop step and a search per absent gate
            groups = self._groups_for(self._gate_chars.intersection(text))
        elif self._automaton is not None:
            return self._run_found(text, digit)
        else:
            groups = self._groups
        mask = done = 0
        capped, enough = self._capped, self._enough
        for kind, gate, chars, literals, entries, bits in groups:
            if not bits & ~done:
                continue
            if kind <= _LITERAL:  # _CHAR or _LITERAL: a search either way here
                if gate not in text:
                    continue
            elif kind == _DIGIT:
                if digit is None:
                    digit = has_digit(text)
                if not digit:
                    continue
            elif kind == _ANY:
                for literal in chars:
                    if literal in text:
                        break
                else:
                    for literal in literals:
                        if literal in text:
                            break
                    else:
                        continue
            for bit, needle, _, pattern in entries:
                if not done & bit and needle in text and (pattern is None or pattern.search(text)):
                    mask |= bit
                    done |= bit
            if capped and (mask & capped).bit_count() >= enough:
                done |= capped
        return mask

    def _run_found(self, text: str, digit: bool | None) -> int:
        """:meth:`run` for a text the automaton reads: only the probes whose needle occurs are
        visited (the literals one pass found, the one-character needles by a search each), in
        a fixed order, behind the same gates."""
        automaton = self._automaton
        assert automaton is not None
        found = set(overlapping_matches(automaton.find_matches_as_strings, text))
        candidates: list[_Candidate] = []
        by_literal = self._by_literal
        for literal in found:
            filed = by_literal.get(literal)
            if filed is not None:
                candidates += filed
        for char, filed in self._by_char:
            if char in text:
                candidates += filed
        if not candidates:
            return 0
        candidates.sort()  # by their order alone: no two share one
        mask = done = 0
        capped, enough = self._capped, self._enough
        for _, bit, kind, gate, chars, literals, pattern in candidates:
            if done & bit:
                continue
            if kind == _CHAR:
                if gate not in text:
                    continue
            elif kind == _LITERAL:
                if gate not in found:
                    continue
            elif kind == _DIGIT:
                if digit is None:
                    digit = has_digit(text)
                if not digit:
                    continue
            elif kind == _ANY and not (
                any(char in text for char in chars) or not found.isdisjoint(literals)
            ):
                continue
            if pattern is None or pattern.search(text):
                mask |= bit
                done |= bit
                if capped and (mask & capped).bit_count() >= enough:
                    done |= capped
        return mask

    def run_ungated(self, text: str) -> int:
        """:meth:`run` without the gates: every probe tried (the reference the tests compare to)."""
        mask = 0
        groups = (*self._gated, *self._either)
        for entries in (*(group[4] for group in groups), self._digit, self._always):
            for bit, needle, _, pattern in entries:
                if needle in text and (pattern is None or pattern.search(text)):
                    mask |= bit
        return mask


def _flat(filed: dict[str, list[_Entry]] | dict[tuple[str, ...], list[_Entry]]) -> list[_Entry]:
    return [entry for entries in filed.values() for entry in entries]


def _union(entries: Sequence[_Entry]) -> int:
    bits = 0
    for bit, _, _, _ in entries:
        bits |= bit
    return bits


_IDENT: Final = r"[A-Za-z_]\w{0,60}"

SYNTAX_FAMILIES: Final[tuple[tuple[str, tuple[Probe, ...]], ...]] = (
    ("def", (probe("def ", rf"def {_IDENT} ?\(", gate="("),)),
    ("class", (probe("class ", r"class [A-Z]\w{0,60} ?[(:{<]", gate=("(", ":", "{", "<")),)),
    ("function", (probe("function", r"function ?\w{0,60} ?\([^)\n]{0,120}\) ?\{", gate="{"),)),
    ("arrow", (probe("=>"),)),
    ("include", (probe("#include", r"#include ?[<\"]"),)),
    (
        "import",
        (
            probe(" import ", r"from [\w.]{1,80} import ", gate="import "),
            probe("import ", r"\nimport [\w.]{1,80}+[ \t]*+;?[ \t]*+\n", gate="import "),
        ),
    ),
    (
        "print",
        (
            probe("console.log("),
            probe("System.out.print"),
            probe("printf("),
            probe("println"),
            probe("fmt.Print"),
        ),
    ),
    ("public", (probe("public ", r"public (?:static )?(?:class|void|int|String|final) "),)),
    ("fn", (probe("fn ", r"fn [a-z_]\w{0,60} ?[(<]", gate=("(", "<")),)),
    (
        "binding",
        tuple(
            probe(f"{kw} ", rf"{kw} (?:mut )?{_IDENT} ?(?:: ?[\w<>\[\]]{{1,40}} ?)?=", gate="=")
            for kw in ("let", "const", "var", "val")
        ),
    ),
    # not a Greek question mark ("Τι ώρα είναι;" at a line end)
    ("semicolon", (probe(";", rf";(?<![{GREEK_LETTER_CLASS}];)[ \t]*+\n"),)),
    ("brace", (probe("{", r"\{[ \t]*+\n"), probe("}", r"\n[ \t]*+\}"))),
    ("sql", (probe("SELECT ", r"SELECT [^\n;]{1,200}? FROM "), probe("select * from "))),
    ("tag", (probe("<", r"</?[A-Za-z][\w-]{0,30}(?: [^<>\n]{0,200})?/?>"),)),
    ("shell", (probe("$ ", r"\n[ \t]*+\$ \S"), probe("\n>>> "), probe("\nPS> "))),
    ("call", (probe("(", r"\.[a-z_]\w{0,60}\([^()\n]{0,80}\)"),)),
    ("operator", tuple(probe(op) for op in ("==", "!=", "&&", "||", "+=", "::", "->"))),
)
"""One family per kind of code syntax; ``TextScan.syntax`` counts the families that fired."""
SYNTAX_ENOUGH: Final = 2
"""Syntax families are counted up to this many: the rules only ask whether two kinds of syntax
(a ``def`` and a ``;`` line end, say) occur, and a pasted module would fire most of them."""

CODE_DETECTORS: Final = Detectors(
    (
        ("fence", (probe("```", r"\n[ \t]{0,3}+```"), probe("~~~", r"\n[ \t]{0,3}+~~~"))),
        (
            "trace",
            (
                probe("Traceback (most recent call last)"),
                probe('File "', r"File \"[^\"\n]{1,300}\", line \d"),
                probe(" at ", r"\n[ \t]++at [\w$.<>/]{1,200} ?\([^()\n]{0,200}:\d", gate="("),
                probe("Exception in thread"),
                probe("Error", r"Error(?<=[A-Za-z]{2}Error)(?::| \()", gate=(":", "(")),
                probe("Exception", r"Exception(?<=[A-Za-z]{2}Exception)(?::| \()", gate=(":", "(")),
                probe("error[E", r"error\[E\d{4}\]"),
                probe("panicked at"),
                probe("\npanic: "),
                probe("goroutine ", r"goroutine \d{1,9} \[", gate="["),
                probe("Segmentation fault"),
                probe("SIGSEGV"),
                probe("core dumped"),
                probe("\nnpm ERR!"),
                probe("fatal error:"),
                probe("undefined reference to"),
                probe("WARNING: DATA RACE"),
                probe("CrashLoopBackOff"),
                probe("[Previous line repeated "),
            ),
        ),
        *SYNTAX_FAMILIES,
    ),
    enough=([name for name, _ in SYNTAX_FAMILIES], SYNTAX_ENOUGH),
)
"""Run over the original text (case matters) at its two ends: code and stack traces."""
FENCE: Final = CODE_DETECTORS.bits("fence")
TRACE: Final = CODE_DETECTORS.bits("trace")
SYNTAX: Final = CODE_DETECTORS.bits(*(name for name, _ in SYNTAX_FAMILIES))

FILE_DETECTORS: Final = Detectors(
    (
        (
            "file_ext",
            (
                probe(
                    ".",
                    # the look-ahead (the extensions' first letters) spares ``re`` trying every
                    # alternative after each full stop of prose
                    r"\.(?<=[\w*]\.)(?=[bcdeghijklmprstvy])(?:py|js|mjs|ts|tsx|jsx|rs|go|java|"
                    r"kt|cpp|hpp|cc|cs|rb|php|swift|scala|sh|bash|ps1|sql|html|css|scss|json|"
                    r"ya?ml|toml|ipynb|lua|dart|exs?|erl|hs|clj|vue|svelte|tf|gradle|c|h)\b(?![.\w])",
                ),
                probe(
                    " .",
                    r" \.(?:py|js|ts|rs|go|java|cpp|sh|sql|json|ya?ml|toml|log|csv|jpe?g|png)\b",
                ),
            ),
        ),
    )
)
"""File names (``main.rs``, ``a .py file``): run by :func:`has_file_name`."""
_DOT_RUN_RE: Final = re.compile(r"\.\.\.+")


def has_file_name(text: str) -> bool:
    """Whether ``text`` (original case) names a source or data file by its extension.

    A match needs a dot between a word character and an extension, or after a space, so no dot
    of a run of two or more takes part in one, and a run only ever acts as "a dot follows"; so
    runs are first cut to two dots (an ellipsis or ``....`` padding would otherwise cost ``re``
    a match attempt per dot) without changing the answer.
    """
    if "..." in text:
        text = _DOT_RUN_RE.sub("..", text)
    return FILE_DETECTORS.run(text) != 0


_CODE_SYMBOL_FAMILY: Final = (
    "code_symbol",
    (
        probe("c++"),
        probe("c#"),
        probe("f#"),
        probe(".net", r"\.net\b"),
        probe("node.js"),
        probe("objective-c"),
    ),
)
TEXT_DETECTORS: Final = Detectors(
    (
        _CODE_SYMBOL_FAMILY,
        (
            "arithmetic",
            (
                # operator first (a character-class prefix ``re`` skips to), the digit before it
                # in a look-behind: the same matches as ``\d ?[-+*/×÷] ?\(?-?\d``
                probe(" ", r"[-+*/×÷](?:(?<=\d.)|(?<=\d .)) ?\(?-?\d", gate=DIGIT),
                probe("^", r"\^\d"),
                probe("% of ", r"% of \d"),
                *(
                    probe(f" {word} ", rf" {word} \d", gate=DIGIT)
                    for word in ("times", "plus", "minus")
                ),
            ),
        ),
        (
            "equation",
            (probe("=", r"=(?<=[\w)]=) ?-?[\w(]"), probe(" =", r" =(?<=[\w)] =) ?-?[\w(]")),
        ),
        (
            "modular",
            (
                probe("mod", r"mod(?:ulo)? ?\(?\d", gate=DIGIT),
                probe("k", r"k(?<=\dk) ?[-+] ?\d", gate=DIGIT),
            ),
        ),
    )
)
"""Run over the folded (lower-cased) keyword text: language symbols and formulas."""
CODE_SYMBOL: Final = TEXT_DETECTORS.bits("code_symbol")
CODE_SYMBOL_DETECTORS: Final = Detectors((_CODE_SYMBOL_FAMILY,))
"""The ``code_symbol`` family of :data:`TEXT_DETECTORS` alone, for a text whose code score is all
that is asked (:func:`~octoroute.routing.signals.scan_code`)."""
ARITHMETIC: Final = TEXT_DETECTORS.bits("arithmetic")
EQUATION: Final = TEXT_DETECTORS.bits("equation")
MODULAR: Final = TEXT_DETECTORS.bits("modular")
