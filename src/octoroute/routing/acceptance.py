"""A turn that accepts an assistant's offer, and the request it accepts.

An assistant often ends an answer with an offer: "Shall I write the full proof, with the
generalisation?", "¿Quieres que lo convierta en el capítulo completo?", "要我写完整配置吗？".
The user's next turn ("yes please", "sí, dale", "好，写一下，还要 gzip") is then a request for the
offered work, and policy rule 1 says it takes that work's tier. Read on its own, a short "yes"
looks like small talk: before this module the learned model sent 56 of writer_v's 118 such deep
rows and 102 of its 186 balanced ones to ``fast``.

So the learned router reads an accepting turn as the request it accepts: the conversation
before the assistant's answer, then one user turn made of the answer's last paragraph (the
offer) and the acceptance, with whatever the user added ("yes, and make the limit 50 MB").
The model then judges the offered work with everything it learned from ordinary requests.

A turn accepts an offer when the assistant's last answer ends by asking something
(:func:`~octoroute.routing.metadata.ends_asking`), the turn is short (:data:`ACCEPT_WORDS`),
does not change the subject, thanks nobody (a thanks signs off more often than it says yes),
and opens with a yes that is not itself asked ("ok?"): a phrase of the lexicon's ``affirm`` or
``proceed`` groups, or one of a language file's ``affirm_openers`` (words such as Japanese
"はい", Chinese "好" or Korean "네", too common inside other words to count anywhere but at the
start of a turn).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

from octoroute.routing.lexicon import LANGUAGES, KeywordGroup, Language
from octoroute.routing.lexicon.folding import SPACED_SCRIPTS_CLASS, UNSPACED_RE, fold, tokenize
from octoroute.wire.messages import Message, latest_user_index

ACCEPT_WORDS: Final = 40
"""The longest turn read as accepting an offer: a yes with the details the offer asked for
("yes, RSU 800 shares vested over 3 years, 2 in CA"); a longer turn is a request of its own.
In grouped cross-validation 15, 40 and 80 words differed by 0.001."""
OPENING_CHARS: Final = 48
"""How much of a turn's start is folded to look for its opening yes."""
AFFIRM: Final = KeywordGroup.AFFIRM
PROCEED: Final = KeywordGroup.PROCEED
OFFER_CHARS: Final = 300
"""How far from the end of an assistant's answer a question mark makes it an offer, and the
most of its last paragraph that stands for the offer (its end, where the question is)."""


_QUESTION_MARKS: Final = ("?", "？")
WORD_SPACED_CLASS: Final = (
    f"{SPACED_SCRIPTS_CLASS}\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af"
)
"""Scripts matched by substring that still put spaces between words (Hindi, Bengali, Tamil,
Telugu; Korean between its phrases): there a yes must end where a word ends ("계속 해줘", not
"계속되는"). Chinese, Japanese and Thai have no such boundary to check."""
_WORD_SPACED_RE: Final = re.compile(f"[{WORD_SPACED_CLASS}]")


def _word_goes_on(char: str) -> bool:
    """Whether ``char`` continues the word before it: a letter, a digit or a combining mark
    (an Indic vowel sign is not ``isalnum``)."""
    return char.isalnum() or unicodedata.category(char).startswith("M")


class OpenerMatcher:
    """Whether a text opens with a yes of any language; built once from the language files."""

    def __init__(self, languages: Iterable[Language]) -> None:
        spaced: set[str] = set()
        prefixes: set[str] = set()
        bounded: set[str] = set()
        for language in languages:
            groups = language.groups
            for phrase in (*groups.get(AFFIRM, ()), *groups.get(PROCEED, ())):
                if not UNSPACED_RE.search(phrase):
                    spaced.add(phrase)
                else:
                    (bounded if _WORD_SPACED_RE.search(phrase) else prefixes).add(phrase)
            for phrase in language.affirm_openers:
                (bounded if UNSPACED_RE.search(phrase) else spaced).add(phrase)
        self._spaced = frozenset(spaced)
        self._longest = max((phrase.count(" ") + 1 for phrase in spaced), default=0)
        by_first: dict[str, list[tuple[str, bool]]] = {}
        for phrase, word_ends in (
            *((phrase, False) for phrase in sorted(prefixes)),
            *((phrase, True) for phrase in sorted(bounded)),
        ):
            by_first.setdefault(phrase[0], []).append((phrase, word_ends))
        self._by_first = {char: tuple(found) for char, found in by_first.items()}
        """The phrases of those scripts by their first character, each with whether it must end
        a word: a turn's first character picks the few worth trying."""

    def opens(self, text: str) -> bool:
        """Whether ``text`` opens with a yes that is not itself asked ("ok?", "はい？" ask what
        was meant). A yes of words ("ok, write it") is the turn's first words; in Chinese,
        Japanese or Thai a phrase of the groups is a prefix ("继续写第三章"); a phrase of
        Korean or an Indic script, or any ``affirm_openers`` entry, must also end where a word
        ends ("네 해주세요", not "네트워크")."""
        folded = fold(text.lstrip()[:OPENING_CHARS])
        for phrase, word_ends in self._by_first.get(folded[:1], ()):
            end = len(phrase)
            if not folded.startswith(phrase):
                continue
            if word_ends and _word_goes_on(folded[end : end + 1] or " "):
                continue
            return not _asked(folded, end)
        if UNSPACED_RE.match(folded):
            return False  # "什么是OK手势？": a Latin word later on does not open the turn
        words = tokenize(folded, unspaced=UNSPACED_RE.search(folded) is not None)
        for count in range(min(self._longest, len(words)), 0, -1):
            if " ".join(words[:count]) in self._spaced:
                return not _asked(folded, _end_of_words(folded, words[:count]))
        return False


def _end_of_words(folded: str, words: Sequence[str]) -> int:
    """Where the last of ``words`` ends in ``folded``, which they open (in order)."""
    end = 0
    for word in words:
        end = folded.find(word, end) + len(word)
    return end


def _asked(folded: str, end: int) -> bool:
    """Whether a question mark follows the yes that ends at ``end`` (spaces between)."""
    return folded[end:].lstrip().startswith(_QUESTION_MARKS)


OPENERS: Final = OpenerMatcher(LANGUAGES)


def last_answer(messages: Sequence[Message], latest: int) -> int | None:
    """The index of the assistant's answer that the user turn at ``latest`` replies to: the last
    assistant message after the user turn before it, if any."""
    for index in range(latest - 1, -1, -1):
        role = messages[index].role
        if role == "assistant":
            return index
        if role == "user":
            return None
    return None


def offered_request(messages: Sequence[Message]) -> list[Message] | None:
    """The request an accepting latest turn accepts (see the module), or ``None`` when the
    conversation has no assistant answer before its latest user turn."""
    latest = latest_user_index(messages)
    if latest is None:
        return None
    answer_at = last_answer(messages, latest)
    if answer_at is None:
        return None
    answer = messages[answer_at].text().rstrip()
    offer = answer[answer.rfind("\n\n") + 2 :] if "\n\n" in answer else answer
    offer = offer[-OFFER_CHARS:]
    turn = Message(role="user", content=offer + "\n" + messages[latest].text())
    return [*messages[:answer_at], turn]
