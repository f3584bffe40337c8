"""A turn that accepts an assistant's offer is routed as the offered work (policy rule 1).

Table-driven: which turns open with a yes in which language, when the ``accepts_offer`` signal
fires and when it must not, the request the learned router reads instead, and what the shipped
model decides for a "yes" to a deep, a balanced and a one-line offer.
"""

from __future__ import annotations

from typing import Final

import pytest

from octoroute.config.schema import RoutingConfig
from octoroute.enums import Importance, Strategy, Tier
from octoroute.routing.acceptance import ACCEPT_WORDS, OPENERS, OpenerMatcher, offered_request
from octoroute.routing.features import extract
from octoroute.routing.lexicon import LANGUAGES, parse_language
from octoroute.routing.metadata import ACCEPTS_OFFER, infer_metadata
from octoroute.routing.strategy import Router
from octoroute.wire.messages import Message

N: Final = Importance.NORMAL
PROOF_OFFER: Final = (
    "The sum of two odd squares is 2 mod 4, so it is never a square.\n\n"
    "Shall I write the complete formal proof, by induction on n, including the generalisation "
    "to every prime p?"
)
TESTS_OFFER: Final = (
    "```python\ndef slugify(s):\n    return '-'.join(s.lower().split())\n```\n\n"
    "Soll ich dir noch pytest-Tests dafür schreiben?"
)
COMMAND_OFFER: Final = (
    "Docker keeps old layers around.\n\nWant me to just give you the one-line command that "
    "removes them?"
)


def thread(
    offer: str, reply: str, question: str = "Is the sum of two odd squares a square?"
) -> list[Message]:
    return [
        Message(role="user", content=question),
        Message(role="assistant", content=offer),
        Message(role="user", content=reply),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "yes please",
        "ok, write it",
        "Sure — and add the generalisation",
        "sí, dale",
        "ja bitte",
        "Weiter",
        "vas-y, sur la marée à Saint-Malo",
        "давай тесты, табличные",
        "はい、お願いします",
        "お願いします、全部",
        "好，写一下，还要 gzip",
        "可以，写吧",
        "继续写第三章",
        "네 해주세요",
        "ㅇㅇ 증명해줘",
        "हाँ, विस्तार से",
        "ได้เลย วิเคราะห์มา",
        "계속 해줘",
        "  please do",
    ],
)
def test_a_turn_that_opens_with_a_yes_in_any_language(text: str) -> None:
    assert OPENERS.opens(text)


@pytest.mark.parametrize(
    "text",
    [
        "no thanks",
        "what about Postgres?",
        "네트워크 설정은 어떻게 해요?",  # opens with 네, but inside a word
        "好久不见",  # 好, but inside a word
        "可以用吗？",  # 可以, but it asks whether something can be used
        "예를 들어 설명해 주세요",
        "nope, just the command",
        "계속되는 오류가 있어요",  # 계속 ("go on"), but inside a longer word
        "what is the next prime?",  # a "go on" word, but not first
        "什么是OK手势？",  # a Latin "ok" after Chinese text does not open the turn
        "これはOKですか？",
        "ok?",  # a yes that is asked: "what do you mean?"
        "はい？",
        "네? 무슨 뜻이에요?",
    ],
)
def test_a_turn_that_does_not_open_with_a_yes(text: str) -> None:
    assert not OPENERS.opens(text)


def test_an_opener_counts_only_at_the_start_of_a_turn() -> None:
    matcher = OpenerMatcher(
        [
            parse_language(
                "xx.toml", 'language = "X"\naffirm_openers = ["네"]\n[groups]\ngreet = ["hi"]\n'
            )
        ]
    )
    assert matcher.opens("네, 부탁해요")
    assert not matcher.opens("그럼 네, 부탁해요")


def test_openers_are_listed_for_the_languages_whose_yes_is_too_common_for_a_keyword() -> None:
    openers = {language.code: language.affirm_openers for language in LANGUAGES}
    assert "はい" in openers["ja"]
    assert "好" in openers["zh"]
    assert "네" in openers["ko"]


# --- the signal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    ["yes please", "sí, dale", "ok yes. the generalisation too, and name the lemma", "はい"],
)
def test_a_yes_to_an_offer_carries_the_signal(reply: str) -> None:
    assert ACCEPTS_OFFER in infer_metadata(thread(PROOF_OFFER, reply), N).signals


@pytest.mark.parametrize(
    ("messages", "why"),
    [
        (thread("Here is the proof. It is complete.", "yes please"), "the answer offered nothing"),
        (thread(PROOF_OFFER, "ok, by the way, what's the capital of Peru?"), "a change of subject"),
        (thread(PROOF_OFFER, "no, just tell me the answer"), "a no"),
        (thread(PROOF_OFFER, "ok thanks, bye"), "thanks: a sign-off more often than a yes"),
        (thread(PROOF_OFFER, "ok, I'll try it tomorrow, thank you!"), "a sign-off"),
        (thread(PROOF_OFFER, "yes " + "word " * ACCEPT_WORDS), "too long to be only a yes"),
        (
            [
                Message(role="assistant", content=PROOF_OFFER),
                Message(role="user", content="something else first"),
                Message(role="user", content="yes please"),
            ],
            "another user turn came between",
        ),
        ([Message(role="user", content="yes please")], "nothing before it"),
    ],
)
def test_no_signal_without_an_offer_accepted(messages: list[Message], why: str) -> None:
    assert ACCEPTS_OFFER not in infer_metadata(messages, N).signals, why


def test_the_offered_request_is_the_offer_and_the_reply_after_the_earlier_turns() -> None:
    messages = thread(PROOF_OFFER, "yes, and the generalisation")
    offered = offered_request(messages)
    assert offered is not None
    assert [m.role for m in offered] == ["user", "user"]
    assert offered[0] is messages[0]
    assert offered[1].text() == (
        "Shall I write the complete formal proof, by induction on n, including the "
        "generalisation to every prime p?\nyes, and the generalisation"
    )
    assert offered_request([Message(role="user", content="yes")]) is None


def test_the_learned_features_are_those_of_the_offered_request() -> None:
    messages = thread(PROOF_OFFER, "yes please")
    meta = infer_metadata(messages, N)
    offered = offered_request(messages)
    assert offered is not None
    assert extract(messages, meta) == extract(offered, infer_metadata(offered, N))


# --- what the shipped model decides ---------------------------------------------------------


async def _tier(messages: list[Message]) -> Tier:
    router = Router(RoutingConfig(strategy=Strategy.LEARNED))
    decision = await router.route(messages, N)
    assert ACCEPTS_OFFER in decision.metadata.signals
    return decision.tier


@pytest.mark.parametrize(
    ("offer", "reply", "tier"),
    [
        (PROOF_OFFER, "はい、お願いします", Tier.DEEP),
        (PROOF_OFFER, "yes please", Tier.DEEP),
        (TESTS_OFFER, "ja bitte", Tier.BALANCED),
        (TESTS_OFFER, "yes please", Tier.BALANCED),
        (COMMAND_OFFER, "yes", Tier.FAST),
        (COMMAND_OFFER, "yes please", Tier.FAST),
    ],
)
async def test_a_yes_takes_the_tier_of_the_work_it_accepts(
    offer: str, reply: str, tier: Tier
) -> None:
    """The same "yes please" goes to three tiers: the offer decides, not the yes."""
    assert await _tier(thread(offer, reply)) is tier
