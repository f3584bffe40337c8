"""What each dialect tells placement, and the conversation's affinity key."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from octoroute.config.schema import LimitsConfig
from octoroute.wire.anthropic import parse_messages_request
from octoroute.wire.completions import parse_completion_request
from octoroute.wire.hints import DEFAULT_HINTS, RequestHints, affinity_key
from octoroute.wire.messages import Message
from octoroute.wire.requests import parse_chat_request
from octoroute.wire.responses import parse_responses_request

LIMITS = LimitsConfig()
SYSTEM = Message(role="system", content="You are terse.")
FIRST = Message(role="user", content="What is a monad?")
ANSWER = Message(role="assistant", content="A monoid in the category of endofunctors.")
SECOND = Message(role="user", content="Simpler, please.")


def body(**fields: object) -> bytes:
    return orjson.dumps({"model": "auto", **fields})


# --- the dialects' hints --------------------------------------------------------------------------


def test_chat_reads_max_completion_tokens_before_max_tokens_and_fills_the_default() -> None:
    chat = parse_chat_request(
        body(messages=[{"role": "user", "content": "hi"}], max_tokens=50, max_completion_tokens=70),
        LIMITS,
    )
    plain = parse_chat_request(body(messages=[{"role": "user", "content": "hi"}]), LIMITS)

    assert chat.hints == RequestHints(70, True, None)
    assert plain.hints == RequestHints(None, True, None)


def test_chat_takes_prompt_cache_key_else_user_as_its_body_key() -> None:
    messages = [{"role": "user", "content": "hi"}]
    both = parse_chat_request(body(messages=messages, prompt_cache_key="pk", user="u"), LIMITS)
    user = parse_chat_request(body(messages=messages, user="u"), LIMITS)
    odd = parse_chat_request(body(messages=messages, user=42, prompt_cache_key=""), LIMITS)

    assert both.hints.cache_key == "pk"
    assert user.hints.cache_key == "u"
    assert odd.hints.cache_key is None, "a value of another type is the server's to judge"


def test_completions_count_their_own_limit_only() -> None:
    limited = parse_completion_request(body(prompt="x", max_tokens=16, user="me"), LIMITS)
    unlimited = parse_completion_request(body(prompt="x"), LIMITS)

    assert limited.hints == RequestHints(16, False, "me")
    assert unlimited.hints == RequestHints(None, False, None)


def test_responses_read_max_output_tokens_and_prompt_cache_key() -> None:
    parsed = parse_responses_request(
        body(input="hi", max_output_tokens=99, prompt_cache_key="conv-1", user="u"),
        LIMITS,
        lambda _: None,
        0,
    )

    assert parsed.hints == RequestHints(99, True, "conv-1")


def test_messages_read_max_tokens_and_metadata_user_id() -> None:
    parsed = parse_messages_request(
        body(
            max_tokens=300,
            messages=[{"role": "user", "content": "hi"}],
            metadata={"user_id": "user_abc_session_1"},
        ),
        LIMITS,
    )

    assert parsed.hints == RequestHints(300, True, "user_abc_session_1")


# --- the affinity key -----------------------------------------------------------------------------


def test_a_session_header_comes_first_in_the_documented_order() -> None:
    conversation = [SYSTEM, FIRST, ANSWER, SECOND]
    hinted = RequestHints(cache_key="body-key")

    ours = affinity_key({"x-session-id": "s1", "session_id": "other"}, hinted, conversation)
    claude = affinity_key({"x-claude-code-session-id": "s1"}, hinted, conversation)
    body_key = affinity_key({}, hinted, conversation)
    hashed = affinity_key({}, DEFAULT_HINTS, conversation)

    assert ours == claude, "a session id means one conversation whatever header carried it"
    assert len({ours, body_key, hashed}) == 3
    for header in ("x-openwebui-chat-id", "session_id"):
        assert affinity_key({header: "s1"}, hinted, conversation) == ours


def test_a_lone_first_turn_without_a_key_has_no_affinity() -> None:
    assert affinity_key({}, DEFAULT_HINTS, [SYSTEM, FIRST]) is None
    assert affinity_key({}, DEFAULT_HINTS, [FIRST]) is None
    assert affinity_key({}, RequestHints(cache_key="k"), [FIRST]) is not None


def test_every_turn_of_a_conversation_has_the_same_key_and_other_conversations_differ() -> None:
    turn2 = affinity_key({}, DEFAULT_HINTS, [SYSTEM, FIRST, ANSWER, SECOND])
    turn3 = affinity_key(
        {},
        DEFAULT_HINTS,
        [SYSTEM, FIRST, ANSWER, SECOND, ANSWER, Message(role="user", content="Thanks")],
    )
    other_user = affinity_key(
        {}, DEFAULT_HINTS, [SYSTEM, Message(role="user", content="hi"), ANSWER, SECOND]
    )
    other_system = affinity_key(
        {}, DEFAULT_HINTS, [Message(role="system", content="Be verbose."), FIRST, ANSWER]
    )

    assert turn2 is not None
    assert turn2 == turn3
    assert len({turn2, other_user, other_system}) == 3


KEY_SCRIPT = """
from octoroute.wire.hints import RequestHints, affinity_key
from octoroute.wire.messages import Message
conversation = [Message(role="user", content="hi"), Message(role="assistant", content="yo")]
print(affinity_key({"x-session-id": "abc"}, RequestHints(), conversation))
print(affinity_key({}, RequestHints(cache_key="abc"), conversation))
print(affinity_key({}, RequestHints(), conversation))
"""


def test_keys_are_the_same_in_every_process() -> None:
    # Workers are separate interpreters with their own str-hash salt: the key must not use it.
    outputs = {
        subprocess.run(
            [sys.executable, "-c", KEY_SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for seed in ("1", "2")
    }

    assert len(outputs) == 1
    assert len(set(outputs.pop().split())) == 3
