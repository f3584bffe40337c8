"""Anthropic content as chat messages: ``system`` text, and each message's blocks.

Part of the Messages translation (``wire.anthropic``): ``text``, ``image`` (base64 or URL source,
as ``image_url`` parts), ``document`` with a plain-text source (its text), ``tool_use`` (an
assistant's ``tool_calls``), ``tool_result`` (a ``tool`` message; ``is_error`` is said in its
text; its images follow in a user message, as chat's tool messages carry text only),
``thinking``/``redacted_thinking`` (dropped, as chat has no place for them), and ``system``
messages inside ``messages`` (kept where they stand). Any other block is a 400 naming it.

No message vanishes in translation: as Anthropic's API does, an empty block list is a 400 except
on the final assistant message (a prefill of nothing), and so is a user message whose blocks are
all dropped (only thinking). An assistant turn of only thinking blocks stays, as an empty
assistant message: Claude Code sends its earlier turns back so, and dropping their thinking is
this translation's documented choice, not the client's mistake.
"""

from __future__ import annotations

from typing import Any

import orjson

from octoroute.errors import InvalidRequest
from octoroute.wire.requests import shown

__all__ = ["Block", "chat_messages", "text_of"]

Block = dict[str, Any]


def text_of(value: Any, where: str) -> str:
    """A string, or text blocks joined by newlines (``system``, a ``system`` message)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for index, block in enumerate(value):
            if not (isinstance(block, dict) and block.get("type") == "text"):
                raise InvalidRequest(
                    f"{where}[{index}] must be a text block", param=f"{where}[{index}]"
                )
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(
                    f"{where}[{index}].text must be a string", param=f"{where}[{index}].text"
                )
            texts.append(text)
        return "\n".join(texts)
    raise InvalidRequest(f"{where} must be a string or an array of text blocks", param=where)


def _image(block: Block, where: str) -> Block:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media = source.get("media_type")
        data = source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise InvalidRequest(
                f"{where}.source needs media_type and data strings", param=f"{where}.source"
            )
        url = f"data:{media};base64,{data}"
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequest(
            f"{where}.source.type must be 'base64' or 'url' (with its fields), got {shown(kind)}",
            param=f"{where}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: Block, where: str) -> str:
    """A plain-text ``document``: its title (when given) and text. PDFs and file references
    have no chat form."""
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind != "text" or not isinstance(source, dict) or not isinstance(source.get("data"), str):
        raise InvalidRequest(
            f"{where}.source.type {shown(kind)} cannot be sent to a chat model; only a "
            "plain-text source ('text', with data) can",
            param=f"{where}.source",
        )
    title = block.get("title")
    return f"{title}\n\n{source['data']}" if isinstance(title, str) and title else source["data"]


def chat_messages(message: Any, where: str, *, final: bool) -> list[Block]:
    """The chat messages for one Anthropic message at ``where`` (``messages[i]``): tool results
    first, as chat wants them right after the assistant's calls. ``final``: the conversation's
    last message, the only one that may have no content (as an assistant prefill)."""
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    role = message.get("role")
    if role == "system":
        return [{"role": "system", "content": text_of(message.get("content"), f"{where}.content")}]
    if role not in ("user", "assistant"):
        raise InvalidRequest(
            f"{where}.role must be 'user', 'assistant' or 'system', got {shown(role)}",
            param=f"{where}.role",
        )
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{where}.content must be a string or an array of content blocks",
            param=f"{where}.content",
        )
    if not content and not (final and role == "assistant"):
        raise InvalidRequest(
            f"{where}.content has no content the model can read: it is an empty array, which "
            "only a final assistant message may be; send at least one block",
            param=f"{where}.content",
        )
    out: list[Block] = []
    parts: list[Block] = []
    calls: list[Block] = []
    result_images: list[Block] = []
    for index, block in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block, dict):
            if not isinstance(block.get("text"), str):
                raise InvalidRequest(f"{at}.text must be a string", param=f"{at}.text")
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and isinstance(block, dict):
            parts.append(_image(block, at))
        elif kind == "document" and isinstance(block, dict):
            parts.append({"type": "text", "text": _document(block, at)})
        elif kind == "tool_use" and isinstance(block, dict) and role == "assistant":
            calls.append(_call(block, at))
        elif kind == "tool_result" and isinstance(block, dict) and role == "user":
            text, images = _result(block, at)
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
            result_images.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequest(
                f"{at}.type {shown(kind)} is not supported in a {role} message here",
                param=f"{at}.type",
            )
    if role == "assistant":
        if any(part["type"] != "text" for part in parts):
            raise InvalidRequest(f"{where}: an assistant message cannot hold images", param=where)
        text = "".join(part["text"] for part in parts)
        assistant: Block = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            assistant["tool_calls"] = calls
        out.append(assistant)
    elif parts or result_images:
        # Tool results first: chat wants them right after the assistant's calls; then their
        # images, then the user's own blocks.
        parts = result_images + parts
        if all(part["type"] == "text" for part in parts):
            out.append({"role": "user", "content": "\n".join(part["text"] for part in parts)})
        else:
            out.append({"role": "user", "content": parts})
    elif not out:
        # Only thinking blocks: the message would vanish, and the conversation with it could
        # end on the assistant's turn or be empty.
        raise InvalidRequest(
            f"{where}.content has no content the model can read: its only blocks are thinking "
            "blocks, which the translation to chat drops; send a text, image, document or "
            "tool_result block",
            param=f"{where}.content",
        )
    return out


def _call(block: Block, where: str) -> Block:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise InvalidRequest(f"{where} needs id and name strings", param=where)
    arguments = block.get("input")
    if arguments is not None and not isinstance(arguments, dict):
        raise InvalidRequest(f"{where}.input must be an object", param=f"{where}.input")
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": orjson.dumps(arguments or {}).decode()},
    }


def _result(block: Block, where: str) -> tuple[str, list[Block]]:
    """A ``tool_result``'s text (``Error: `` first when ``is_error``) and its images, which
    chat's tool messages cannot carry."""
    if not isinstance(block.get("tool_use_id"), str):
        raise InvalidRequest(f"{where}.tool_use_id must be a string", param=f"{where}.tool_use_id")
    result = block.get("content")
    texts: list[str] = []
    images: list[Block] = []
    if isinstance(result, str):
        texts.append(result)
    elif isinstance(result, list):
        for index, part in enumerate(result):
            at = f"{where}.content[{index}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image" and isinstance(part, dict):
                images.append(_image(part, at))
            elif kind == "document" and isinstance(part, dict):
                texts.append(_document(part, at))
            else:
                raise InvalidRequest(
                    f"{at}: a tool result may hold text, image and plain-text document blocks, "
                    f"got type {shown(kind)}",
                    param=f"{at}.type",
                )
    elif result is not None:
        raise InvalidRequest(
            f"{where}.content must be a string or an array of blocks", param=f"{where}.content"
        )
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}"
    return text, images
