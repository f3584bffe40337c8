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
  question marks, lines, code punctuation; a fence, a URL, a final question mark), and the
  number of user turns (1, 2-3, 4+) only when the turn continues the thread (the ``followup``
  signal). The sizes of earlier turns, the turn count of a turn that stands alone and whether
  there is a system prompt are left out: the latest turn is the request, and they taught the
  model that threads need big models (a lookup at the end of a coding thread went to
  balanced); leaving them out was a small but steady gain in grouped cross-validation.
* ``cue``: the keyword groups of :mod:`~octoroute.routing.lexicon` that occur in the latest
  turn (``proof``, ``design``, ``creative_long``, ``brief``...), from any language's phrases of
  one word among its words, and from the substring phrases (Chinese, Japanese, Korean, Hindi)
  in its first :attr:`FeatureSpec.char_chars` characters, and ``offer`` when the assistant's
  previous answer ended with a question ("Shall I write the tests too?", which "yes please"
  accepts). The signals are thresholds over these groups; the groups themselves are graded,
  language-neutral evidence, which is what carries a model trained mostly on English over to
  a question in Japanese or Polish.
* ``lead``: the first word and the first two words of the latest turn ("write", "prove",
  "what's the", "how do"), where a request usually says what it wants; of its last paragraph
  when that is a short question after long material (:func:`ask_after_material`, which also
  adds ``ask_after`` to ``shape`` and reads ``cue`` from that paragraph alone).
* ``w`` and ``w2``: the words and word pairs of the latest user turn, case- and accent-folded,
  read from a head-and-tail slice (:data:`FeatureSpec.head`, :data:`FeatureSpec.tail`) so a
  pasted document costs what a paragraph does. Pairs are off in the default spec
  (:data:`FeatureSpec.pairs`). Chinese, Japanese, Thai, Korean and Hindi have no words here
  (see ``c`` and ``cue``); in the ``words`` size the first four count one word per two
  characters, and Hindi, Marathi, Bengali, Tamil and Telugu, which put spaces between words,
  a word per run of their script (:func:`~.folding.unspaced_word_count`).
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
from collections import Counter
from collections.abc import Sequence
from typing import Final, NamedTuple

from octoroute.enums import Importance, TaskType, Tier
from octoroute.routing.acceptance import offered_request
from octoroute.routing.lexicon import LANGUAGES, KeywordGroup, Language
from octoroute.routing.lexicon.folding import (
    GREEK_QUESTION_RE,
    QUESTION_MARKS,
    UNSPACED_RE,
    question_marks,
    spaced_script_runs,
)
from octoroute.routing.metadata import (
    ACCEPTS_OFFER,
    FOLLOWUP,
    RouteMetadata,
    bounded,
    ends_asking,
    infer_metadata,
)
from octoroute.routing.rules import decide_by_rules
from octoroute.routing.signals import fold, greek_question_marks, tokenize
from octoroute.wire.messages import Message, latest_user_index

SCHEME: Final = "octoroute-features/4"
"""Bump when a key's meaning changes: a model file names the scheme it was trained with."""

NAMESPACES: Final = ("sig", "shape", "lead", "w", "w2", "c", "pw", "sw", "cue")
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
    cue: Sequence[str]


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


_LETTERS_BEYOND_ASCII: Final = re.compile(
    "[\u0100-\u024f\u0370-\u1fff\u2c00-\ud7ff\uf900-\ufaff\uff00-\uffef]"
)
"""Letters that folding leaves outside ASCII: Latin Extended, Greek, Cyrillic, Arabic, Hindi,
CJK... (General Punctuation, arrows and symbols, U+2000-U+2BFF, are not letters)."""
_UNSPACED: Final = re.compile(
    "[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
"""Scripts written without spaces between words (Thai, Japanese, Chinese; Korean by syllable)."""


def _tokens(folded: str, unspaced: bool) -> tuple[list[str], int]:
    """The words of folded text, and how many words its unspaced scripts hold besides them.

    ASCII, and text whose every character beyond ASCII is punctuation (English with a
    typographic dash or quote: turning those into ``?``, a separator as they were, gives the
    same words) take the fast ASCII path, other text the general tokenizer. Scripts matched by
    substring (``unspaced``: Chinese, Japanese, Thai, Korean, Hindi...) give no words (``c`` and
    ``cue`` read them) but count as one word per two characters, their punctuation included,
    about as :func:`~octoroute.routing.signals.scan_text` counts them, so a long question in
    Japanese is not "short"; a run of an Indic script, written with spaces, counts as a word.
    Splitting Korean and Hindi into words as well cost 5-30 us a request (a regex over every
    character) for no gain in grouped cross-validation.
    """
    if not folded.isascii() and _LETTERS_BEYOND_ASCII.search(folded) is None:
        folded = folded.encode("ascii", "replace").decode("ascii")
    words = tokenize(folded, unspaced=False)
    if not unspaced:
        return words, 0
    # counted by lengths, in C: a regex over each character costs ~60 ns apiece here
    rest = len(folded) - folded.count(" ") - folded.count("\n") - sum(map(len, words))
    runs = spaced_script_runs(folded)  # Hindi, Bengali, Tamil...: a run is a word
    if runs:
        return words, (rest - sum(map(len, runs))) // 2 + len(runs)
    return words, rest // 2


def _words(text: str, head: int, tail: int) -> list[str]:
    return _tokens(fold(bounded(text, head, tail)), False)[0]


_CUE_NAMES: Final = (*(group.value for group in KeywordGroup), "offer")
"""The keys of the ``cue`` namespace: every keyword group, then :data:`OFFER`, in bit order."""
_BIT: Final = {name: 1 << index for index, name in enumerate(_CUE_NAMES)}
OFFER: Final = "offer"
"""The ``cue`` key of a turn that answers an assistant's question."""


class _Cues(NamedTuple):
    """The lexicon's phrases as bit masks of the groups that list them (a phrase two languages
    share, or one listed in two groups, has each group's bit once)."""

    word: dict[str, int]
    """Phrases of one word."""
    by_char: dict[str, tuple[tuple[str, int], ...]]
    """Phrases of the scripts matched by substring (CJK, Thai, Hangul, Devanagari) with their
    groups, filed under one of their characters: only the phrases filed under a character the
    text has are looked for. A phrase is filed under its character that the fewest phrases
    share, so a common character ("的", "请") does not make every phrase a candidate."""


def _cue_tables(languages: Sequence[Language]) -> _Cues:
    """Every phrase of one word (or any substring phrase) of the language files. Phrases of
    several words are left out, so that the words cost one set intersection; the signals in
    ``sig`` already weigh them."""
    word: dict[str, int] = {}
    unspaced: dict[str, int] = {}
    for language in languages:
        for group, phrases in language.groups.items():
            bit = _BIT[group.value]
            for phrase in phrases:
                if UNSPACED_RE.search(phrase):
                    unspaced[phrase] = unspaced.get(phrase, 0) | bit
                elif " " not in phrase:
                    word[phrase] = word.get(phrase, 0) | bit
    shared: Counter[str] = Counter()
    for phrase in unspaced:
        shared.update(set(UNSPACED_RE.findall(phrase)))
    by_char: dict[str, list[tuple[str, int]]] = {}
    for phrase, bits in sorted(unspaced.items()):
        anchor = min(UNSPACED_RE.findall(phrase), key=lambda char: (shared[char], char))
        by_char.setdefault(anchor, []).append((phrase, bits))
    return _Cues(word, {char: tuple(found) for char, found in by_char.items()})


_CUES: Final = _cue_tables(LANGUAGES)
_ANCHORS: Final = frozenset(_CUES.by_char)
_CUE_WORDS: Final = frozenset(_CUES.word)
_OFFER_BIT: Final = _BIT[OFFER]
_NAMES_CACHE: dict[int, tuple[str, ...]] = {}
_NAMES_CACHE_MAX: Final = 4096


ASK_MATERIAL_CHARS: Final = 400
"""A turn this long may be material with a question after it (see :func:`ask_after_material`)."""
ASK_MAX_CHARS: Final = 300
"""The longest last paragraph that counts as the question about the material before it."""
ASK_AFTER: Final = "ask_after"
"""The ``shape`` key of a turn whose request follows the material it is about."""


def _has_substring_script(folded: str) -> bool:
    """Whether folded text holds a script matched by substring, so has substring cues."""
    return not folded.isascii() and UNSPACED_RE.search(folded) is not None


def ask_after_material(text: str) -> str:
    """The last paragraph of ``text`` when it is short and follows material at least twice as
    long (a pasted lease, table or log, then "what's the deposit?"), else ``""``; a paragraph
    with a code fence is material, not the question.

    In such a turn the words that say what is wanted are the last paragraph's; the material's
    own words (a contract's "tenant", "liability", a log's "error") say what it is about, and
    as ``lead`` and ``cue`` they sent one-fact questions about long pastes to big tiers. Policy
    rule 4: pasted material matters through what must be done with it. Reading the last
    paragraph's words for ``lead`` and ``cue`` gained 0.004-0.006 acceptable accuracy in grouped
    cross-validation over twelve files (three seeds), and 0.01 on the file of long pastes.
    """
    cut = text.rstrip().rfind("\n\n")
    if cut <= 0:
        return ""
    ask = text[cut:].strip()
    if not ask or len(ask) > ASK_MAX_CHARS or cut < 2 * len(ask) or "```" in ask:
        return ""  # a fenced block is more material (a config, then "what should we change?")
    return ask


def _names(mask: int) -> tuple[str, ...]:
    """The ``cue`` keys of a bit mask, in bit order (cached: a few hundred masks occur)."""
    found = _NAMES_CACHE.get(mask)
    if found is None:
        found = tuple(name for name, bit in _BIT.items() if mask & bit)
        if len(_NAMES_CACHE) < _NAMES_CACHE_MAX:
            _NAMES_CACHE[mask] = found
    return found


def _cue_mask(tokens: list[str], start: str) -> int:
    """The groups whose one-word phrases occur among the words of the latest turn, or whose
    substring phrases occur in ``start``, its first :attr:`FeatureSpec.char_chars` characters
    (empty unless it has a script matched by substring). The words meet the table in a set
    intersection, in C: a Python loop over every word would cost more than the rest of the
    features together. The substrings are looked for only at the start because a set of CJK
    text costs ~75 ns a character on the reference machine: the whole slice cost 25-40 us,
    the start ~6 us, and grouped cross-validation moved by 0.002 at most."""
    word = _CUES.word
    mask = 0
    for hit in _CUE_WORDS.intersection(tokens):  # a few hits: a loop beats reduce over map
        mask |= word[hit]
    if start:
        by_char = _CUES.by_char
        for char in _ANCHORS.intersection(start):  # iterates the str in C
            for phrase, bits in by_char[char]:
                if phrase in start:
                    mask |= bits
    return mask


def extract(
    messages: Sequence[Message], meta: RouteMetadata, spec: FeatureSpec = DEFAULT_SPEC
) -> Features:
    """The features of a conversation whose inferred metadata is ``meta``; bounded work.

    A turn that accepts an assistant's offer (the ``accepts_offer`` signal) is read as the
    request it accepts (:func:`~octoroute.routing.acceptance.offered_request`), metadata and
    all: its tier is the offered work's.
    """
    if ACCEPTS_OFFER in meta.signals:
        offered = offered_request(messages)
        if offered is not None:
            messages, meta = offered, infer_metadata(offered, meta.importance)
    latest = latest_user_index(messages)
    text = "" if latest is None else messages[latest].text()
    chars = len(text)
    sliced = bounded(text, spec.head, spec.tail)
    folded = fold(sliced)
    substrings = _has_substring_script(folded)
    tokens, unspaced_words = _tokens(folded, substrings)
    words = len(tokens) + unspaced_words
    if chars > len(sliced):
        words = max(words, chars // 6)
    signals = meta.signals
    sig = [*signals, _TASK[meta.task_type], *_rule_keys(meta)]

    users = 0
    system = previous = answer = None
    for index, message in enumerate(messages):
        role = message.role
        if role == "user":
            users += 1
            if latest is not None and index < latest:
                previous = message
        elif role == "assistant":
            if latest is not None and index < latest:
                answer = message
        elif role == "system" and system is None:
            system = message
    greek_questions = greek_question_marks(sliced)  # a Greek ";" is a question, not code
    shape = [
        _CHARS[chars.bit_length()],
        _WORDS[words.bit_length()],
        _QUESTIONS[(question_marks(sliced) + greek_questions).bit_length()],
        _LINES[text.count("\n").bit_length()],
    ]
    followup = FOLLOWUP in signals
    if followup:
        shape.append(_TURNS[users.bit_length()])
    if sliced:
        marks = (
            sliced.count("{") + sliced.count(";") - greek_questions + sliced.count("(")
            + sliced.count("=") + sliced.count("<") + sliced.count("[") + sliced.count("->")
            + sliced.count("::")
        )  # fmt: skip
        shape.append(_CODE[(marks * 100 // len(sliced)).bit_length()])
    if "```" in text:
        shape.append("fence")
    if "http" in sliced:
        shape.append("url")
    if sliced[-1:] in QUESTION_MARKS or (
        greek_questions and GREEK_QUESTION_RE.match(sliced, len(sliced) - 1) is not None
    ):
        shape.append("ends_question")
    # what the request's lead and cue words are: a short question after long material has
    # its own, the material's words say only what it is about
    ask = ask_after_material(text) if chars >= ASK_MATERIAL_CHARS else ""
    if ask:
        shape.append(ASK_AFTER)
        ask_folded = fold(bounded(ask, spec.head, spec.tail))
        ask_substrings = _has_substring_script(ask_folded)
        request_tokens = _tokens(ask_folded, ask_substrings)[0]  # none in Chinese: as ever
        request_start = ask_folded[: spec.char_chars] if ask_substrings else ""
    else:
        request_tokens = tokens
        request_start = folded[: spec.char_chars] if substrings else ""

    unspaced = not folded.isascii() and _UNSPACED.search(folded) is not None
    grams: list[str] = []
    if spec.char_n and unspaced:
        start = " ".join(folded[: spec.char_chars].split())
        grams = list(map(start.__getitem__, _slices(spec.char_n, len(start))))

    context_previous: list[str] = []
    context_system: list[str] = []
    if words <= spec.context_words and followup:
        if previous is not None:
            context_previous = _words(previous.text(), spec.context_chars, 0)
        if system is not None:
            context_system = _words(system.text(), spec.context_chars, 0)

    mask = _cue_mask(request_tokens, request_start)
    if answer is not None and ends_asking(answer):
        mask |= _OFFER_BIT
    cue = _names(mask)

    pairs = list(itertools.pairwise(tokens[: spec.pairs])) if spec.pairs else []
    lead = request_tokens[:1]
    if len(request_tokens) > 1:
        lead.append(request_tokens[0] + " " + request_tokens[1])
    return Features(  # positional: a keyword call costs more per request
        sig, shape, lead, tokens, pairs, grams, context_previous, context_system, cue,
    )  # fmt: skip
