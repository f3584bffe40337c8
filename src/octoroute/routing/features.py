"""What the learned router reads of a conversation: named, namespaced features, in bounded time.

A request becomes a handful of *namespaces*, each a set of keys; a model file holds a weight
vector per key it knows (any other key is ignored), so the features need no hashing and are the
same in every process (Python's ``hash`` of a ``str`` is randomised per process, so it could not
name a feature in a file). The namespaces:

* ``sig``: the rule signals of :func:`~octoroute.routing.metadata.infer_metadata`, its task
  type, and the tier and reason the refined rule table would choose. The lexicon's multilingual
  evidence reaches the model through them, so "beweise" and "prove" weigh the same even when the
  training data only had one of them.
* ``shape``: sizes and shapes of the latest turn, bucketed on a log scale (characters, words,
  question marks, lines, code punctuation; a fence, a URL, a final question mark), and
  of the conversation: user turns (1, 2-3, 4+) and whether it has a system prompt. The sizes of
  earlier turns and of the system prompt are left out: the latest turn is the request, and in
  cross-validation they taught the model that long threads need big models.
* ``lead``: the first word and the first two words of the latest turn ("write", "prove",
  "what's the", "how do"), where a request usually says what it wants.
* ``w`` and ``w2``: the words and word pairs of the latest user turn, case- and accent-folded,
  read from a head-and-tail slice (:data:`FeatureSpec.head`, :data:`FeatureSpec.tail`) so a
  pasted document costs what a paragraph does. Pairs are off in the default spec
  (:data:`FeatureSpec.pairs`).
* ``c``: character n-grams of the start of the latest turn (whitespace collapsed) when it is
  written in a script without spaces between words (Chinese, Japanese, Thai) or with
  particles glued to its words (Korean). Other scripts have their words, and cutting them into n-grams as well cost more than
  it was worth in cross-validation.
* ``pw`` and ``sw``: the words of the previous user turn and of the system prompt, bounded the
  same way, read only when the latest turn is short and continues the thread (the ``followup``
  signal): context matters then ("and how would I test that?"), and otherwise the latest turn
  stands on its own (a sign-off at the end of a hard thread is small talk).

Every bound is a field of :class:`FeatureSpec`, which a model file carries and
:mod:`~octoroute.routing.model_file` checks against :data:`SPEC_LIMITS`, so no file can make a
decision slower than those limits allow. :data:`SCHEME` names this code's way of turning text
into keys: a model trained under another scheme is refused.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Final, NamedTuple

from octoroute.enums import Importance, TaskType, Tier
from octoroute.routing.metadata import FOLLOWUP, RouteMetadata, bounded
from octoroute.routing.rules import decide_by_rules
from octoroute.routing.signals import fold, tokenize
from octoroute.wire.messages import Message

SCHEME: Final = "octoroute-features/1"
"""Bump when a key's meaning changes: a model file names the scheme it was trained with."""

NAMESPACES: Final = ("sig", "shape", "lead", "w", "w2", "c", "pw", "sw")
"""Every namespace, in the order :class:`Features` holds them."""
PAIR_NAMESPACES: Final = frozenset({"w2"})
"""Namespaces whose keys are pairs (of words), written ``"a b"`` in a file."""
PAIR_SEPARATORS: Final = {"w2": " "}


class FeatureSpec(NamedTuple):
    """The bounds of feature extraction; a model file carries the ones it was trained with."""

    head: int = 240
    """Characters read from the start of the latest user turn for words."""
    tail: int = 120
    """Characters read from its end (where an instruction after a paste sits)."""
    char_chars: int = 60
    """Characters at the start of the latest turn cut into character n-grams."""
    char_n: int = 3
    """The length of a character n-gram (0: none)."""
    context_chars: int = 200
    """Characters read from the previous user turn and from the system prompt."""
    context_words: int = 15
    """Context words are read only when the latest turn has at most this many words."""
    pairs: int = 0
    """Word pairs (``w2``) are read from this many words at the start of the slice (0: none;
    in cross-validation they added nothing the single words and ``lead`` did not, at twice
    the lookups)."""


SPEC_LIMITS: Final = FeatureSpec(
    head=1000, tail=500, char_chars=300, char_n=5, context_chars=500, context_words=64, pairs=200
)
"""The largest bounds a model file may ask for: they cap the cost of one decision."""
DEFAULT_SPEC: Final = FeatureSpec()


class Features(NamedTuple):
    """The keys of one request, per namespace (order as :data:`NAMESPACES`)."""

    sig: Sequence[str]
    shape: Sequence[str]
    lead: Sequence[str]
    w: Sequence[str]
    w2: Sequence[tuple[str, str]]
    c: Sequence[str]
    pw: Sequence[str]
    sw: Sequence[str]


_SLICES_CACHE: dict[tuple[int, int], tuple[slice, ...]] = {}


def _slices(n: int, length: int) -> tuple[slice, ...]:
    """``slice(i, i + n)`` for every start of an n-gram in ``length`` characters (cached)."""
    key = (n, length)
    found = _SLICES_CACHE.get(key)
    if found is None:
        found = _SLICES_CACHE[key] = tuple(slice(i, i + n) for i in range(max(0, length - n + 1)))
    return found


def _buckets(name: str, cap: int) -> tuple[str, ...]:
    """``name=b`` for every bit length ``b`` a count can have, the ones past ``cap`` as ``cap``:
    log2 buckets (0, 1, 2-3, 4-7...) looked up by ``n.bit_length()`` with no arithmetic."""
    return tuple(f"{name}={min(length, cap)}" for length in range(65))


_CHARS: Final = _buckets("chars", 15)
_WORDS: Final = _buckets("words", 15)
_TURNS: Final = _buckets("turns", 3)
"""User turns in the conversation: 1, 2-3, 4+."""
_QUESTIONS: Final = _buckets("questions", 3)
_LINES: Final = _buckets("lines", 10)
_CODE: Final = _buckets("code", 6)
"""Code punctuation (``{ ; ( = < [ -> ::``) per 100 characters of the slice."""
_TASK: Final = {task: f"task={task.value}" for task in TaskType}
_RULE_TIER: Final = {tier: f"rule={tier.value}" for tier in Tier}
_NO_RULE: Final = ("rule=none",)


def _rule_keys(meta: RouteMetadata) -> tuple[str, ...]:
    """What the refined rule table would decide at normal importance: its tier and reason.

    The rules' order of precedence is knowledge the signals alone do not carry; as features
    the model weighs them against everything else instead of obeying them.
    """
    if meta.importance is not Importance.NORMAL:
        meta = RouteMetadata(meta.token_estimate, Importance.NORMAL, meta.task_type, meta.signals)
    rule = decide_by_rules(meta, refine=True)
    if rule is None:
        return _NO_RULE
    return _RULE_TIER[rule.tier], "reason=" + rule.reason


def _latest_user(messages: Sequence[Message]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return None


_LETTERS_BEYOND_ASCII: Final = re.compile(
    "[\u0100-\u024f\u0370-\u1fff\u2c00-\ud7ff\uf900-\ufaff\uff00-\uffef]"
)
"""Letters that folding leaves outside ASCII: Latin Extended, Greek, Cyrillic, Arabic, Hindi,
CJK... (General Punctuation, arrows and symbols, U+2000-U+2BFF, are not letters)."""
_UNSPACED: Final = re.compile(
    "[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
"""Scripts written without spaces between words (Thai, Japanese, Chinese; Korean by syllable)."""


def _tokens(folded: str) -> list[str]:
    """The words of folded text, on the fast ASCII path whenever that gives the same words.

    English with a typographic dash or quote is not ASCII, and the general tokenizer costs
    several times the ASCII one; when every character beyond ASCII is punctuation or a symbol,
    turning those into ``?`` (a separator, as they were) gives the same words on the fast path.
    """
    if not folded.isascii() and _LETTERS_BEYOND_ASCII.search(folded) is None:
        folded = folded.encode("ascii", "replace").decode("ascii")
    return tokenize(folded, unspaced=False)


def _words(text: str, head: int, tail: int) -> list[str]:
    return _tokens(fold(bounded(text, head, tail)))


def extract(
    messages: Sequence[Message], meta: RouteMetadata, spec: FeatureSpec = DEFAULT_SPEC
) -> Features:
    """The features of a conversation whose inferred metadata is ``meta``; bounded work."""
    latest = _latest_user(messages)
    text = "" if latest is None else messages[latest].text()
    chars = len(text)
    sliced = bounded(text, spec.head, spec.tail)
    folded = fold(sliced)
    tokens = _tokens(folded)
    words = len(tokens)
    if chars > len(sliced):
        words = max(words, chars // 6)
    signals = meta.signals
    sig = [*signals, _TASK[meta.task_type], *_rule_keys(meta)]

    users = 0
    system = previous = None
    for index, message in enumerate(messages):
        role = message.role
        if role == "user":
            users += 1
            if latest is not None and index < latest:
                previous = message
        elif role == "system" and system is None:
            system = message
    shape = [
        _CHARS[chars.bit_length()],
        _WORDS[words.bit_length()],
        _TURNS[users.bit_length()],
        _QUESTIONS[(sliced.count("?") + sliced.count("？")).bit_length()],
        _LINES[text.count("\n").bit_length()],
    ]
    if system is not None:
        shape.append("system")
    if sliced:
        marks = (
            sliced.count("{") + sliced.count(";") + sliced.count("(") + sliced.count("=")
            + sliced.count("<") + sliced.count("[") + sliced.count("->") + sliced.count("::")
        )  # fmt: skip
        shape.append(_CODE[(marks * 100 // len(sliced)).bit_length()])
    if "```" in text:
        shape.append("fence")
    if "http" in sliced:
        shape.append("url")
    if sliced[-1:] in ("?", "？"):
        shape.append("ends_question")

    grams: list[str] = []
    if spec.char_n and not folded.isascii() and _UNSPACED.search(folded) is not None:
        start = " ".join(folded[: spec.char_chars].split())
        grams = list(map(start.__getitem__, _slices(spec.char_n, len(start))))

    context_previous: list[str] = []
    context_system: list[str] = []
    if words <= spec.context_words and FOLLOWUP in signals:
        if previous is not None:
            context_previous = _words(previous.text(), spec.context_chars, 0)
        if system is not None:
            context_system = _words(system.text(), spec.context_chars, 0)

    pairs = list(itertools.pairwise(tokens[: spec.pairs])) if spec.pairs else []
    lead = tokens[:1]
    if len(tokens) > 1:
        lead.append(tokens[0] + " " + tokens[1])
    return Features(  # positional: a keyword call costs more per request
        sig, shape, lead, tokens, pairs, grams, context_previous, context_system,
    )  # fmt: skip
