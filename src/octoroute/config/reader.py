"""Typed, path-qualified reads from a parsed TOML table that collect every problem, not the first.

``tomllib`` gives plain ``dict``/``list``/scalar values. A ``Table`` wraps one TOML table with its
key path (``models.fast[1]``) and a shared ``Problems`` list. Each getter returns the checked
value, or ``None`` after recording a problem, so a whole file is checked in one pass and the user
sees every mistake at once. A table remembers which keys were read; ``close()`` then reports the
rest as unknown, with a did-you-mean suggestion, so a typo such as ``prority`` cannot pass
silently.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
from enum import StrEnum
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

E = TypeVar("E", bound=StrEnum)


class _Required:
    """The marker for a key without a default: ``REQUIRED`` is its only instance."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
"""Pass as ``default`` to make a key mandatory."""

_MAX_SHOWN_CHARS = 60
"""User values are echoed in messages; a pasted blob must not flood the terminal."""


class Problems:
    """Every problem found so far, each ``'key.path: message'``, in the order found."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record that the value at ``path`` is wrong, in words a user can act on."""
        self.items.append(f"{path}: {message}")


def show(value: object) -> str:
    """A value as the user wrote it: ``0`` stays ``0``, ``0.5`` stays ``0.5``, strings quoted.

    Long strings and numbers are cut, with their length, so the message still fits a line.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) <= _MAX_SHOWN_CHARS:
            return json.dumps(value, ensure_ascii=False)
        cut = json.dumps(value[: _MAX_SHOWN_CHARS - 20], ensure_ascii=False)
        return f'{cut[:-1]}..." ({len(value)} characters)'
    if isinstance(value, float | int):
        text = repr(value)
        if len(text) <= _MAX_SHOWN_CHARS:
            return text
        return f"{text[: _MAX_SHOWN_CHARS - 20]}... ({len(text)} digits)"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def describe(value: object) -> str:
    """The TOML type of ``value`` followed by the value, for 'must be X, got Y' messages."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list):
        return "an array"
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, datetime.datetime):
        kind = "date-time"
    elif isinstance(value, datetime.date):
        kind = "date"
    elif isinstance(value, datetime.time):
        kind = "time"
    else:  # pragma: no cover - tomllib produces nothing else
        kind = type(value).__name__
    return f"{kind} {show(value)}"


def quoted_list(words: Iterable[str]) -> str:
    """``'a', 'b' or 'c'``: a closed vocabulary as a message lists it."""
    items = [f"'{word}'" for word in words]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was probably meant to be, if one is close enough."""
    pool = list(candidates)
    for candidate in pool:
        if candidate.casefold() == word.casefold():
            return candidate
    folded = {candidate.casefold(): candidate for candidate in pool}
    matches = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def _finite(value: int | float) -> float | None:
    """``value`` as a float, or ``None`` for NaN, infinities and integers too large for a float."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class Table:
    """One TOML table being checked: its key path, its raw values and the keys read so far."""

    def __init__(
        self,
        problems: Problems,
        data: Mapping[str, object],
        path: str,
        hints: Mapping[str, str] | None = None,
    ) -> None:
        self.problems = problems
        self.data = data
        self.path = path
        self.hints: Mapping[str, str] = hints or {}
        """Advice for keys users commonly put here by mistake (v1 leftovers), keyed by name."""
        self._known: list[str] = []

    def key(self, name: str) -> str:
        """The full path of key ``name`` in this table."""
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, message: str) -> None:
        """Record a problem with key ``name`` of this table."""
        self.problems.add(self.key(name), message)

    def raw(self, name: str, default: object, missing: str = "required key is missing") -> object:
        """The raw value of ``name`` (marking it known), ``default`` if absent.

        A missing ``REQUIRED`` key is reported here, worded by ``missing``, and comes back as
        ``REQUIRED``.
        """
        self._known.append(name)
        if name in self.data:
            return self.data[name]
        if default is REQUIRED:
            self.fail(name, missing)
        return default

    def string(self, name: str, default: str | _Required | None = REQUIRED) -> str | None:
        """A string value; ``None`` when absent without a default or after a problem."""
        value = self.raw(name, default)
        if value is None or value is REQUIRED:
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {describe(value)}")
            return None
        return value

    def string_list(
        self, name: str, check: Callable[[str], tuple[str | None, str | None]]
    ) -> tuple[str, ...] | None:
        """An array of strings (default: empty), each put in its canonical form by ``check``,
        which returns ``(canonical, None)`` or ``(None, problem)``; an entry whose canonical form
        is already listed is a problem too. Each problem is reported at its index, all of them;
        ``None`` after any."""
        value = self.raw(name, [])
        if not isinstance(value, list):
            self.fail(name, f"must be an array of strings, got {describe(value)}")
            return None
        entries: list[str] = []
        ok = True
        for index, item in enumerate(value):
            if isinstance(item, str):
                canonical, problem = check(item)
            else:
                canonical, problem = None, f"must be a string, got {describe(item)}"
            if canonical is not None and canonical in entries:
                problem = f"{show(item)} is listed twice"
            if problem is not None:
                self.problems.add(f"{self.key(name)}[{index}]", problem)
                ok = False
            elif canonical is not None:
                entries.append(canonical)
        return tuple(entries) if ok else None

    def boolean(self, name: str, default: bool) -> bool | None:
        """A ``true``/``false`` value; ``None`` after a problem (strings like "false" included)."""
        value = self.raw(name, default)
        if not isinstance(value, bool):
            self.fail(name, f"must be true or false, got {describe(value)}")
            return None
        return value

    def integer(
        self,
        name: str,
        default: int | _Required | None = REQUIRED,
        *,
        low: int,
        high: int | None = None,
    ) -> int | None:
        """An integer in ``low..high`` (inclusive); floats and booleans are type errors."""
        value = self.raw(name, default)
        if value is None or value is REQUIRED:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be an integer, got {describe(value)}")
            return None
        if value < low or (high is not None and value > high):
            self.fail(name, f"must be {_int_range(low, high)}, got {show(value)}")
            return None
        return value

    def number(
        self,
        name: str,
        default: float | _Required | None = REQUIRED,
        *,
        bounds: str,
        low: float,
        high: float | None = None,
        low_open: bool = False,
    ) -> float | None:
        """A finite number ``v`` with ``low < v`` (``low_open``) or ``low <= v``, and ``v <= high``.

        TOML integers are accepted (``weight = 2``), booleans are not although Python counts them
        as integers. ``bounds`` is the wording of the range, e.g. ``"a positive number"``.
        """
        value = self.raw(name, default)
        if value is None or value is REQUIRED:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, f"must be a number, got {describe(value)}")
            return None
        number = _finite(value)
        too_low = number is not None and (number <= low if low_open else number < low)
        too_high = number is not None and high is not None and number > high
        if number is None or too_low or too_high:
            self.fail(name, f"must be {bounds}, got {show(value)}")
            return None
        return number

    def choice(
        self,
        name: str,
        enum: type[E],
        default: E | _Required = REQUIRED,
        *,
        rejected: Mapping[str, str] | None = None,
    ) -> E | None:
        """A member of ``enum`` spelled exactly as its value.

        ``rejected`` maps values users plausibly write (v1's ``tool``, ``critical``) to a full
        explanation. Otherwise a wrong case or a near miss gets a did-you-mean suggestion.
        """
        value = self.string(name, default.value if isinstance(default, StrEnum) else default)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            pass
        explanation = (rejected or {}).get(value.casefold())
        if explanation:
            self.fail(name, explanation)
            return None
        allowed = [member.value for member in enum]
        message = f"must be one of {quoted_list(allowed)}, got {show(value)}"
        guess = suggest(value, allowed)
        self.fail(name, f"{message}; did you mean '{guess}'?" if guess else message)
        return None

    def table(
        self, name: str, *, required: bool = False, hints: Mapping[str, str] | None = None
    ) -> Table | None:
        """The sub-table ``name``: an empty one when absent, ``None`` after a problem."""
        header = f"[{self.key(name)}]"
        value = self.raw(
            name, REQUIRED if required else None, f"required table {header} is missing"
        )
        if value is REQUIRED:
            return None
        if value is None:
            return Table(self.problems, {}, self.key(name), hints)
        if not isinstance(value, dict):
            self.fail(name, f"must be a table ({header}), got {describe(value)}")
            return None
        return Table(self.problems, value, self.key(name), hints)

    def array_of_tables(
        self, name: str, *, missing: str, hints: Mapping[str, str] | None = None
    ) -> list[Table] | None:
        """The required array of tables ``name`` (``[[models.fast]]``); ``None`` after a problem."""
        header = f"[[{self.key(name)}]]"
        value = self.raw(name, REQUIRED, missing)
        if value is REQUIRED:
            return None
        if not isinstance(value, list):
            self.fail(name, f"must be an array of tables ({header}), got {describe(value)}")
            return None
        tables: list[Table] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                self.problems.add(
                    f"{self.key(name)}[{index}]",
                    f"must be a table ({header}), got {describe(item)}",
                )
                continue
            tables.append(Table(self.problems, item, f"{self.key(name)}[{index}]", hints))
        return tables if len(tables) == len(value) else None

    def close(self) -> None:
        """Report every key of this table that no getter asked for: each is a typo or a leftover."""
        for name in self.data:
            if name in self._known:
                continue
            if name in self.hints:
                self.fail(name, f"unknown key; {self.hints[name]}")
                continue
            guess = suggest(name, self._known)
            if guess:
                self.fail(name, f"unknown key; did you mean '{guess}'?")
            else:
                self.fail(name, f"unknown key (expected {quoted_list(self._known)})")


def _int_range(low: int, high: int | None) -> str:
    """The wording of an integer range in messages."""
    if high is None:
        return "a positive integer" if low == 1 else f"an integer of at least {low}"
    return f"an integer from {low} to {high}"
