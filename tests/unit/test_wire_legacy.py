"""The v1 ``/chat`` body: the message bounds and the two closed vocabularies."""

from __future__ import annotations

import json

import pytest

from octoroute.enums import Importance, TaskType
from octoroute.errors import InvalidRequest
from octoroute.wire.legacy import MAX_MESSAGE_CHARS, LegacyChatRequest, parse_legacy_chat


def rejection(body: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_legacy_chat(body)
    assert caught.value.status == 400
    return caught.value


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_message_alone_leaves_the_hints_to_the_router() -> None:
    assert parse_legacy_chat(body(message="hello")) == LegacyChatRequest(message="hello")


def test_hints_are_parsed_into_their_enums() -> None:
    request = parse_legacy_chat(body(message="m", importance="high", task_type="code"))
    assert request.importance is Importance.HIGH
    assert request.task_type is TaskType.CODE


@pytest.mark.parametrize("importance", list(Importance))
def test_every_importance_is_accepted(importance: Importance) -> None:
    assert (
        parse_legacy_chat(body(message="m", importance=importance.value)).importance is importance
    )


@pytest.mark.parametrize("task_type", list(TaskType))
def test_every_task_type_is_accepted(task_type: TaskType) -> None:
    assert parse_legacy_chat(body(message="m", task_type=task_type.value)).task_type is task_type


def test_unknown_fields_are_ignored() -> None:
    request = parse_legacy_chat(body(message="m", model="deep", extra={"a": [1]}))
    assert request == LegacyChatRequest(message="m")


def test_message_is_required() -> None:
    error = rejection(body(importance="low"))
    assert (error.param, error.message) == ("message", "message is required")


@pytest.mark.parametrize("message", [None, 5, ["hi"], {"text": "hi"}, True])
def test_message_must_be_a_string(message: object) -> None:
    error = rejection(body(message=message))
    assert error.param == "message"
    assert error.message.startswith("message must be a string, got ")


@pytest.mark.parametrize("message", ["", " ", "\n\t ", "\u3000"])
def test_blank_message_is_rejected(message: str) -> None:
    error = rejection(body(message=message))
    assert error.param == "message"
    assert "empty" in error.message


def test_message_at_the_length_limit_in_code_points_is_accepted() -> None:
    # 4-byte characters: the limit is on code points, not bytes or UTF-16 units.
    message = "😀" * MAX_MESSAGE_CHARS
    assert parse_legacy_chat(body(message=message)).message == message


def test_message_over_the_length_limit_is_rejected_with_the_count() -> None:
    error = rejection(body(message="a" * (MAX_MESSAGE_CHARS + 1)))
    assert error.param == "message"
    assert error.message == "message must be at most 100000 characters, got 100001"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("importance", "urgent"),
        ("importance", "HIGH"),
        ("importance", None),
        ("importance", 1),
        ("task_type", "chat"),
        ("task_type", None),
        ("task_type", ["code"]),
    ],
)
def test_hints_outside_their_vocabulary_list_the_allowed_values(field: str, value: object) -> None:
    error = rejection(body(message="m", **{field: value}))
    assert error.param == field
    allowed = ", ".join(
        member.value for member in (Importance if field == "importance" else TaskType)
    )
    assert (
        error.message == f"{field} must be one of {allowed} (or left out), got {json.dumps(value)}"
    )


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        (b"", "Request body is empty"),
        (b"[]", "Request body must be a JSON object"),
        (b'{"message": "hi"', "Request body is not valid JSON"),
        (b'{"message": "\xff"}', "Request body is not valid UTF-8"),
    ],
)
def test_bodies_that_are_not_json_objects_are_rejected(raw: bytes, start: str) -> None:
    error = rejection(raw)
    assert error.param is None
    assert error.message.startswith(start)
