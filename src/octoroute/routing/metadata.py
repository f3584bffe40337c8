"""Routing metadata: a token estimate, the importance, a task type and the signals behind it.

``infer_metadata`` is what ``model: auto`` requests get. v1 looked for English substrings in the
last user message; here:

* the **latest user turn decides** and earlier turns and the system prompt are context: a hard
  thread that ends in "thanks!" is small talk, and a short follow-up ("why?", "what if p ≡ 3
  mod 4 instead?") inherits the task of the turn it follows;
* keywords match **whole words** in a dozen languages (substrings for CJK), with weighted
  evidence so "postal code" is not code and "Python" alone is not a programming question;
* code, stack traces, proofs, formulas, design/security/concurrency work, pasted text and
  creative forms each have their own detector (:mod:`octoroute.routing.signals`);
* the work is **bounded**: keywords are read from a turn's first and last few hundred
  characters once it is long, the code detectors from 4 KiB at its two ends, and context only
  when it can change the answer, so a 2 MB paste costs about what a 4 KiB one does.

The signal names are a closed vocabulary (:data:`SIGNALS`); the rules read them and
:class:`RouteMetadata` carries them to ``reason`` and ``POST /route``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

import msgspec

from octoroute.enums import Importance, TaskType
from octoroute.routing.acceptance import ACCEPT_WORDS, OFFER_CHARS, OPENERS, last_answer
from octoroute.routing.lexicon import GroupName
from octoroute.routing.signals import (
    CodeScan,
    TextScan,
    asks_question,
    scan_code,
    scan_text,
)
from octoroute.wire.messages import Message, latest_user_index

CONTEXT_CHARS: Final = 512
"""Characters read from each end of a non-user context message (for code evidence only)."""
CONTEXT_MESSAGES: Final = 4
"""How many messages before the latest user turn are scanned as context."""
CountOf = Callable[[GroupName, int], int]
"""``Evidence.counts.get`` (or ``.first.get``) typed so that mypy checks each group name read here
against :class:`~octoroute.routing.lexicon.KeywordGroup`; the keys are plain strings, which hash
faster than enum members."""
SHORT_WORDS: Final = 15
TERSE_WORDS: Final = 8
"""A short turn that is not a question must be this short to go to fast on length alone."""
TERSE: Final = "terse_turn"
SUMMARY_MATERIAL_WORDS: Final = 60
"""A summary request longer than this carries the material to summarise with it."""
PASTE_CHARS: Final = 1200
LONG_TURN_CHARS: Final = 4096
"""About 1024 tokens: v1's boundary between short and long code."""

SMALLTALK: Final = "smalltalk"
CODE: Final = "code"
CODE_FENCE: Final = "code_fence"
CODE_SYNTAX: Final = "code_syntax"
STACK_TRACE: Final = "stack_trace"
FILE_EXT: Final = "file_ext"
CODE_HARD: Final = "code_hard"
CONTEXT_CODE: Final = "context_code"
PROOF: Final = "proof"
MATH: Final = "math"
MATH_HARD: Final = "math_hard"
ARITHMETIC: Final = "arithmetic"
DESIGN: Final = "design"
SECURITY: Final = "security"
CONCURRENCY: Final = "concurrency"
CONCEPT: Final = "concept"
ANALYSIS: Final = "analysis"
SUMMARY: Final = "summary"
CREATIVE: Final = "creative"
CREATIVE_SHORT: Final = "creative_short"
CREATIVE_LONG: Final = "creative_long"
TRANSLATION: Final = "translation"
EXPLAIN: Final = "explain"
HOWTO: Final = "howto"
LOOKUP: Final = "lookup"
DEPTH: Final = "depth"
BRIEF: Final = "brief"
URGENCY: Final = "urgency"
MULTI_PART: Final = "multi_part"
FOLLOWUP: Final = "followup"
TECHNICAL: Final = "technical"
QUESTION: Final = "question"
SHORT_TURN: Final = "short_turn"
PASTED_TEXT: Final = "pasted_text"
LONG_TURN: Final = "long_turn"
ACCEPTS_OFFER: Final = "accepts_offer"
"""The turn says yes to the offer the assistant's answer ended with (:mod:`.acceptance`)."""

SIGNALS: Final = frozenset(
    {SMALLTALK, CODE, CODE_FENCE, CODE_SYNTAX, STACK_TRACE, FILE_EXT, CODE_HARD, CONTEXT_CODE,
     PROOF, MATH, MATH_HARD, ARITHMETIC, DESIGN, SECURITY, CONCURRENCY, CONCEPT, ANALYSIS,
     SUMMARY, CREATIVE, CREATIVE_SHORT, CREATIVE_LONG, TRANSLATION, EXPLAIN, HOWTO, LOOKUP,
     DEPTH, BRIEF, URGENCY, MULTI_PART, FOLLOWUP, TECHNICAL, QUESTION, SHORT_TURN, TERSE,
     PASTED_TEXT, LONG_TURN, ACCEPTS_OFFER}
)  # fmt: skip
"""Every name that can appear in :attr:`RouteMetadata.signals`."""
TASK_SIGNALS: Final = frozenset(
    {CODE, PROOF, MATH, MATH_HARD, DESIGN, SECURITY, CONCURRENCY, ANALYSIS, SUMMARY, CREATIVE,
     CREATIVE_SHORT, CREATIVE_LONG, TRANSLATION, EXPLAIN, CODE_HARD, STACK_TRACE}
)  # fmt: skip
"""Signals that say what the work is; a turn with none of them may inherit its context's."""
_WORD_SIGNALS: Final[tuple[tuple[GroupName, str], ...]] = (
    ("translate", TRANSLATION),
    ("explain", EXPLAIN),
    ("howto", HOWTO),
    ("lookup", LOOKUP),
    ("depth", DEPTH),
    ("brief", BRIEF),
    ("urgency", URGENCY),
)
"""Signals that fire on any phrase of their keyword group, in the order they are named."""
_INHERITED: Final = TASK_SIGNALS | {CODE_FENCE, CODE_SYNTAX, FILE_EXT, DEPTH, MULTI_PART}


class RouteMetadata(msgspec.Struct, frozen=True):
    """What the rules decide on. ``signals`` names what fired, in evaluation order."""

    token_estimate: int
    importance: Importance
    task_type: TaskType
    signals: tuple[str, ...] = ()


def estimate_tokens(messages: Sequence[Message]) -> int:
    """v1's estimate: characters of every message's text // 4 (text parts only, no separators)."""
    total = 0
    for message in messages:
        content = message.content
        if isinstance(content, str):
            total += len(content)
        elif content is not None:
            total += sum(len(part.text) for part in content if part.text is not None)
    return total // 4


def stated_metadata(
    messages: Sequence[Message], importance: Importance, task_type: TaskType
) -> RouteMetadata:
    """Metadata the client stated (legacy ``/chat``): taken as given, only tokens are counted."""
    return RouteMetadata(estimate_tokens(messages), importance, task_type, ())


def bounded(text: str, head: int, tail: int) -> str:
    """``text`` if short, else its first ``head`` and last ``tail`` characters."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[len(text) - tail :]


class _Turn(NamedTuple):
    """One turn's task and signals (a named tuple: one is built per classified turn)."""

    task: TaskType
    signals: tuple[str, ...]

    @property
    def substantive(self) -> bool:
        return any(signal in TASK_SIGNALS for signal in self.signals)


def _code_score(scan: TextScan | CodeScan) -> int:
    get: CountOf = scan.evidence.counts.get
    score = 2 * get("code_strong", 0) + get("code_weak", 0) + 2 * get("code_phrase", 0)
    score -= get("code_neg", 0)
    score += 4 * (scan.fence or scan.trace) + 2 * (scan.file_ext or scan.code_symbol)
    score += 3 if scan.syntax >= 2 else scan.syntax
    if get("write_verb", 0) and get("code_noun", 0):
        score += 2  # "write a Go function", "build me a scraper": the noun needs no adjacency
    return score


def _classify(
    scan: TextScan, chars: int, *, context_code: bool, code_score: int | None = None
) -> _Turn:
    """Name the signals of one turn and pick its task type (first matching family wins).

    Straight-line code, no table built per call: this runs for every ``auto`` request.
    """
    # get(group, 0): no closure call per lookup on the hot path; typed so mypy checks the names
    get: CountOf = scan.evidence.counts.get
    first: CountOf = scan.evidence.first.get

    out: list[str] = []
    append = out.append
    words = scan.words
    short = words <= SHORT_WORDS

    if code_score is None:
        code_score = _code_score(scan)
    is_code = code_score >= 2 or (context_code and code_score >= 1)
    math_score = get("math", 0) + 2 * scan.math_symbols + scan.equation + 2 * scan.modular
    hard_math = get("math_hard", 0)
    is_proof = get("proof", 0) >= 1 and (
        math_score + hard_math + get("math_context", 0) + scan.arithmetic >= 1
    )
    design, security, concurrency = get("design", 0), get("security", 0), get("concurrency", 0)
    area_total = design + security + concurrency + get("area_strong", 0)
    creative = get("write_verb", 0) >= 1 and (
        get("creative", 0) + get("creative_short", 0) + get("creative_long", 0) > 0
    )
    hard_code_evidence = scan.fence or scan.trace or scan.syntax >= 2
    summary = get("summary", 0) >= 1
    analysis = get("analysis", 0) >= 1

    if is_code and creative and not hard_code_evidence:
        is_code = False
    # "Summarise these meeting notes" about a database migration, a design review and a flaky
    # test is a summary: in a passage to summarise, words about software or architecture are
    # its topic, not the task; only code itself (fences, syntax, traces, file names) is.
    if summary and words > SUMMARY_MATERIAL_WORDS and not (hard_code_evidence or scan.file_ext):
        is_code = False
        area_total = 0
    if is_proof:
        append(PROOF)
    if is_code:
        append(CODE)
        if scan.fence:
            append(CODE_FENCE)
        if scan.syntax >= 2:
            append(CODE_SYNTAX)
        if scan.trace:
            append(STACK_TRACE)
        if scan.file_ext:
            append(FILE_EXT)
        if (
            get("code_hard", 0) >= 1
            or get("code_perf", 0) >= 2
            or area_total >= 2
            or hard_math >= 1
        ):
            append(CODE_HARD)
    elif hard_math >= 1:
        append(MATH_HARD)
    area = not is_code and area_total >= 2
    if area:
        # the largest area, the first of equals in this order
        if design >= security and design >= concurrency:
            append(DESIGN)
        else:
            append(SECURITY if security >= concurrency else CONCURRENCY)
        if short and get("lookup", 0) >= 1 and first("lookup", 99) <= 1:
            append(CONCEPT)
    if creative:
        if get("creative_long", 0) >= 1 or scan.word_target >= 1000 or get("depth", 0) >= 1:
            append(CREATIVE_LONG)
        elif get("creative_short", 0) >= 1:
            append(CREATIVE_SHORT)
        else:
            append(CREATIVE)
    if analysis:
        append(ANALYSIS)
    if math_score >= 2 and not is_code:
        append(MATH)
    if scan.arithmetic:
        append(ARITHMETIC)
    if summary:
        append(SUMMARY)
    for group, signal in _WORD_SIGNALS:
        if get(group, 0) >= 1:
            append(signal)
    if scan.list_items >= 4:
        append(MULTI_PART)
    if code_score >= 1 or area_total >= 1 or math_score + hard_math >= 1:
        append(TECHNICAL)
    if scan.question or first("lookup", 99) == 0:
        append(QUESTION)
    if short:
        append(SHORT_TURN)
    if words <= TERSE_WORDS:
        append(TERSE)
    if chars >= PASTE_CHARS:
        append(PASTED_TEXT)
    if chars >= LONG_TURN_CHARS:
        append(LONG_TURN)
    # the task follows from the signals: code, then deep analysis, creative writing, summary
    if is_code:
        task = TaskType.CODE
    elif is_proof or hard_math >= 1 or area or analysis:
        task = TaskType.DEEP_ANALYSIS
    elif creative:
        task = TaskType.CREATIVE_WRITING
    elif summary:
        task = TaskType.DOCUMENT_SUMMARY
    else:
        task = TaskType.QUESTION_ANSWER
    return _Turn(task, tuple(out))


def _is_smalltalk(scan: TextScan) -> bool:
    evidence = scan.evidence
    count: CountOf = evidence.counts.get
    if count("greet", 0) + count("thanks", 0) + count("smalltalk", 0) == 0:
        return False
    residual = evidence.tokens + evidence.unspaced_chars - evidence.covered
    return scan.words <= 12 and residual <= 1 and not scan.fence and not scan.math_symbols


def infer_metadata(messages: Sequence[Message], importance: Importance) -> RouteMetadata:
    """Infer the task of a ``model: auto`` conversation; never raises, bounded work."""
    tokens = estimate_tokens(messages)
    latest = latest_user_index(messages)
    if latest is None:
        return RouteMetadata(tokens, importance, TaskType.QUESTION_ANSWER, ())
    turn_text = messages[latest].text()
    scan = scan_text(turn_text)
    earlier = messages[max(0, latest - CONTEXT_MESSAGES) : latest]
    affirm_only = _only(scan, "affirm") and _assistant_asked(earlier)
    accepts = _accepts_offer(messages, latest, scan, turn_text)
    if _is_smalltalk(scan) and not affirm_only:
        small: tuple[str, ...] = (SMALLTALK, ACCEPTS_OFFER) if accepts else (SMALLTALK,)
        return RouteMetadata(tokens, importance, TaskType.CASUAL_CHAT, small)
    short = scan.words <= SHORT_WORDS
    code_score = _code_score(scan)
    count: CountOf = scan.evidence.counts.get
    proceed = scan.words <= 6 and count("proceed", 0) >= 1
    # Inherit only on an explicit continuation ("and", "it", "what if", "yes" to an offer),
    # never across a topic change ("anyway, ...").
    followup = (
        short
        and count("topic_change", 0) == 0
        and (affirm_only or proceed or count("followup", 0) >= 1)
    )
    # Context costs a scan per message, so it is read only when it can change the decision:
    # for a follow-up (to what?) or a turn with a single hint of code (in a coding thread?),
    # and then only as far as that question needs (see _Context).
    needs_context = earlier and (followup or code_score == 1)
    context = _Context(messages[:latest], earlier, tasks=followup) if needs_context else None
    context_code = code_score == 1 and context is not None and context.has_code()
    turn = _classify(scan, len(turn_text), context_code=context_code, code_score=code_score)
    signals = list(turn.signals)
    task = turn.task
    if followup and context is not None:
        previous = context.previous_task()
        if previous is not None and previous.substantive:
            signals.append(FOLLOWUP)
            signals.extend(s for s in previous.signals if s in _INHERITED and s not in signals)
            if not turn.substantive:
                task = previous.task
        elif not turn.substantive and context.has_code():
            signals[:0] = [CODE, CONTEXT_CODE, FOLLOWUP]
            task = TaskType.CODE
    if accepts:
        signals.append(ACCEPTS_OFFER)
    return RouteMetadata(tokens, importance, task, tuple(signals))


def _accepts_offer(messages: Sequence[Message], latest: int, scan: TextScan, text: str) -> bool:
    """Whether the latest user turn says yes to the offer the assistant's answer before it
    ended with (see :mod:`~octoroute.routing.acceptance`): a short turn, no change of subject
    and no thanks, that opens with a yes or a "go on" ("what is the next prime?" has one, but
    not first). Cheap first: most turns are long or follow no answer."""
    if scan.words > ACCEPT_WORDS or latest == 0:
        return False
    count: CountOf = scan.evidence.counts.get
    if count("topic_change", 0) or count("thanks", 0):
        return False  # "ok, thanks, I'll try it tomorrow" signs off more often than it says yes
    answer = last_answer(messages, latest)
    if answer is None or not ends_asking(messages[answer]):
        return False
    return OPENERS.opens(text)


def _only(scan: TextScan, group: GroupName) -> bool:
    evidence = scan.evidence
    residual = evidence.tokens + evidence.unspaced_chars - evidence.covered
    count: CountOf = evidence.counts.get
    return count(group, 0) >= 1 and scan.words <= 6 and residual <= 2


def ends_asking(answer: Message) -> bool:
    """Whether an assistant's answer ends by asking something ("Shall I write it all?"): the
    offer that a "yes please" accepts, for this step and for the learned ``offer`` cue."""
    return asks_question(answer.text()[-OFFER_CHARS:])


def _assistant_asked(earlier: Sequence[Message]) -> bool:
    """Whether the last assistant message ends by asking something (:func:`ends_asking`)."""
    for message in reversed(earlier):
        if message.role == "assistant":
            return ends_asking(message)
    return False


class _Context:
    """The turns before the latest user turn, each scanned the first time a question needs it.

    The context is the first system message and the ``CONTEXT_MESSAGES`` messages before the
    latest user turn. Two questions are asked of it: whether it is a coding thread (any message
    with a code score of 3 or more: user turns are looked at first, as a follow-up scans them for
    the other question anyway) and which recent user turn asked for real work.
    """

    __slots__ = ("_code", "_messages", "_scans", "_tasks")

    def __init__(
        self, before: Sequence[Message], earlier: Sequence[Message], *, tasks: bool
    ) -> None:
        """``before``: every message before the latest user turn; ``earlier``: the last
        ``CONTEXT_MESSAGES`` of them; ``tasks``: whether :meth:`previous_task` will be asked
        (a follow-up), which needs the user turns' full scans."""
        first_system = next((m for m in before if m.role == "system"), None)
        context = [m for m in earlier if m is not first_system]
        if first_system is not None:
            context.insert(0, first_system)
        self._messages = context
        self._scans: dict[int, TextScan] = {}
        self._code: bool | None = None
        self._tasks = tasks

    def _scan(self, index: int) -> TextScan:
        """The full scan of a user turn (the first time it is asked for)."""
        scan = self._scans.get(index)
        if scan is None:
            scan = self._scans[index] = scan_text(self._messages[index].text())
        return scan

    def _code_scan(self, index: int) -> TextScan | CodeScan:
        """What the code score reads of a message: a user turn's code fields, from its full scan
        when a follow-up needs that too, else from :func:`scan_code` of the same text (the same
        fields and counts, at about half the cost); any other message's code fields of its two
        ends, keywords of its instruction (``keyword_full=0``) as the full scan would read them."""
        message = self._messages[index]
        if message.role == "user":
            return self._scan(index) if self._tasks else scan_code(message.text())
        return scan_code(bounded(message.text(), CONTEXT_CHARS, CONTEXT_CHARS), keyword_full=0)

    def has_code(self) -> bool:
        """Whether any context message shows code (a code score of at least 3)."""
        if self._code is None:
            order = sorted(range(len(self._messages)), key=self._not_user)
            self._code = any(_code_score(self._code_scan(index)) >= 3 for index in order)
        return self._code

    def _not_user(self, index: int) -> bool:
        return self._messages[index].role != "user"

    def previous_task(self) -> _Turn | None:
        """The most recent of the last three user turns that asked for real work, else the
        third; ``None`` without a user turn."""
        seen = 0
        for index in range(len(self._messages) - 1, -1, -1):
            if self._messages[index].role != "user":
                continue
            seen += 1
            scan = self._scan(index)
            code_score = _code_score(scan)
            # the thread matters only to a turn with a single hint of code (as in _classify)
            context_code = code_score == 1 and self.has_code()
            turn = _classify(scan, 0, context_code=context_code, code_score=code_score)
            if turn.substantive or seen >= 3:
                return turn
        return None
