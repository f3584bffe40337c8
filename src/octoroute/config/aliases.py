"""``[aliases]``: client-visible model names (or glob patterns) that stand for a routing target.

Clients with hard-wired model names (``gpt-4o``, ``claude-…``) are pointed at tiers this way.
Every entry is checked against the targets a request may name (``Targets``) and against the
names it must not shadow, and every problem is reported with its key path, ``aliases."gpt-4o*"``
(always quoted: alias names hold dots, colons and slashes).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from octoroute.config.reader import Table, describe, show, suggest
from octoroute.config.rules import control_character_problem
from octoroute.config.schema import Alias
from octoroute.enums import TIERS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

AUTO: Final = "auto"
GLOB_CHARACTERS: Final = frozenset("*?[")
"""A name holding one of these is an ``fnmatch`` pattern, not a listable model name."""
_RESERVED: Final = frozenset({AUTO, *(tier.value for tier in TIERS)})


class Targets:
    """What an alias may point at, by kind: ``auto``, the tiers, and the endpoint names.

    The seam for new kinds: embedding models (a future ``[[embeddings]]`` array) become alias
    targets by passing their names as one more ``kinds`` entry, e.g.
    ``Targets(endpoints=chat_names, embedding_models=embedding_names)``; nothing else here
    changes. Names of every kind are also refused as alias keys, since a request naming them
    already reaches them.
    """

    def __init__(self, **kinds: Iterable[str]) -> None:
        self.routing: Final = (AUTO, *(tier.value for tier in TIERS))
        self.kinds: Final = {kind: tuple(names) for kind, names in kinds.items()}
        self.names: Final = frozenset(name for names in self.kinds.values() for name in names)
        self.known: bool = True
        """False when the names could not be read (see :meth:`unknown`)."""

    @classmethod
    def unknown(cls) -> Targets:
        """The targets of a file whose ``[models]`` or ``[[embeddings]]`` has a problem.

        Which names exist is then not known, so an alias naming anything but ``auto`` or a
        tier is neither accepted nor refused; what does not depend on the fleet (an empty or
        reserved alias name, a target that is not a string or is another alias) is still
        reported with the fleet's problems, so one run lists as much as can be known.
        """
        targets = cls(endpoints=())
        targets.known = False
        return targets

    def wording(self) -> str:
        """``a tier ('fast', 'balanced', 'deep'), 'auto' or an endpoint name``."""
        tiers = ", ".join(f"'{tier.value}'" for tier in TIERS)
        parts = [f"a tier ({tiers})", "'auto'", *(_a_kind(kind) for kind in self.kinds)]
        return ", ".join(parts[:-1]) + " or " + parts[-1]

    def kind_of(self, name: str) -> str | None:
        """The kind (``endpoints``, ...) that holds ``name``, ``None`` when none does."""
        return next((kind for kind, names in self.kinds.items() if name in names), None)


def check_aliases(root: Table, targets: Targets) -> tuple[Alias, ...] | None:
    """The ``[aliases]`` table in file order; ``None`` after a problem (all are reported)."""
    table = root.table("aliases")
    if table is None:
        return None
    aliases: list[Alias] = []
    ok = True
    for name, value in table.data.items():
        table.raw(name, None)
        path = f"{table.path}.{json.dumps(name, ensure_ascii=False)}"
        alias = _alias(name, value, targets, table.data)
        if isinstance(alias, str):
            table.problems.add(path, alias)
            ok = False
        else:
            aliases.append(alias)
    table.close()
    return tuple(aliases) if ok else None


def _alias(name: str, value: object, targets: Targets, table: Mapping[str, object]) -> Alias | str:
    """The checked entry, or the problem with it in words."""
    if not name:
        return "an alias name must not be empty"
    if problem := control_character_problem(name):
        # Clients send the name as ``model``; it is logged and may become a metric label.
        return f"an alias name {problem}, got {show(name)}"
    if name.casefold() in _RESERVED:
        return (
            f"{show(name)} is a routing name; an alias cannot redefine it (requests for "
            f"'{name.casefold()}' always mean {_meaning(name.casefold())})"
        )
    kind = targets.kind_of(name)
    if kind is not None:
        return (
            f"{show(name)} is already {_a_kind(kind)}; requests for it reach it directly, so "
            "this alias would never be used"
        )
    if not isinstance(value, str):
        return f"must be a string naming {targets.wording()}, got {describe(value)}"
    if value in targets.routing or value in targets.names:
        return Alias(name=name, target=value, pattern=not GLOB_CHARACTERS.isdisjoint(name))
    message = f"{show(value)} is not {targets.wording()}"
    if value in table:
        return f"{message}; an alias must name its target, not another alias"
    if not targets.known:
        return Alias(name=name, target=value, pattern=not GLOB_CHARACTERS.isdisjoint(name))
    guess = suggest(value, (*targets.routing, *targets.names))
    return f"{message}; did you mean '{guess}'?" if guess else message


def _meaning(word: str) -> str:
    """What a request naming the reserved ``word`` gets."""
    return "routing" if word == AUTO else f"the {word} tier"


def _a_kind(kind: str) -> str:
    """``endpoints`` -> ``an endpoint name``; ``embedding_models`` -> ``an embedding model name``."""
    return f"an {kind[:-1].replace('_', ' ')} name"
