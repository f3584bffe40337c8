"""Synthetic long and multi-turn requests for timing the rule signals.

The labelled set is mostly short single turns (median 52 characters), while real ``auto`` traffic
also carries pasted documents, modules and logs and coding threads with a system prompt: the
inputs where the scan's bounds (head and tail slices, context messages read only when needed)
matter. These rows are built from the labelled set's own texts, so they hold the same mix of
languages, code and prose, stitched into:

* a *paste*: an instruction, then 2-11 KB of material, sometimes an instruction after it;
* a *thread*: a system prompt, two to four user/assistant exchanges whose answers are material,
  then a last user turn that is a short follow-up ("why?") or a long paste.

Four rows in five are built from the set's ASCII texts only (English prose, code, logs: 80 % of
its texts and 91 % of its characters), as a real paste is mostly in one script; every fifth row
mixes all of them, Latin accents, Cyrillic and CJK together, which takes the slow path of every
pass (non-ASCII lower-casing, regex tokenizing, substring phrases) and so sets the tail.
Every row is at most ``max_chars`` characters of text in all. The same ``seed`` gives the same
rows: the decisions over them can be compared before and after a change (``bench/rule_snapshot.py``).
Only the standard library and :class:`~octoroute.wire.messages.Message` are used, so the module
runs against an older source tree too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from octoroute.wire.messages import Message

MAX_CHARS = 12_000
"""The largest row, in characters of text over all its messages."""


def synthetic_rows(
    conversations: Sequence[Sequence[Message]],
    count: int,
    *,
    seed: int = 19,
    max_chars: int = MAX_CHARS,
) -> list[list[Message]]:
    """``count`` long or multi-turn conversations built from the texts of ``conversations``."""
    rng = random.Random(seed)
    every = [message.text() for messages in conversations for message in messages]
    every = [text for text in every if text.strip()]
    every_user = [
        message.text()
        for messages in conversations
        for message in messages
        if message.role == "user" and 0 < len(message.text()) <= 400
    ]
    ascii_texts = [text for text in every if text.isascii()]
    ascii_users = [text for text in every_user if text.isascii()]
    texts, users = every, every_user

    def material(size: int) -> str:
        parts: list[str] = []
        length = 0
        while length < size:
            part = rng.choice(texts)
            parts.append(part)
            length += len(part) + 2
        return "\n\n".join(parts)[:size]

    rows: list[list[Message]] = []
    for index in range(count):
        mixed = index % 5 == 4
        texts, users = (every, every_user) if mixed else (ascii_texts, ascii_users)
        short = [text for text in users if len(text) <= 80]
        kind = index % 3
        if kind == 0:
            instruction = rng.choice(users)
            turn = instruction + "\n\n" + material(rng.randint(2_000, max_chars - 1_000))
            if rng.random() < 0.5:
                turn += "\n\n" + rng.choice(users)
            messages = [Message("user", turn[:max_chars])]
        else:
            messages = [Message("system", material(rng.randint(200, 1_500)))]
            for _ in range(rng.randint(2, 4)):
                messages.append(Message("user", rng.choice(users)))
                messages.append(Message("assistant", material(rng.randint(300, 2_500))))
            if kind == 1:
                last = rng.choice(short)
            else:
                last = rng.choice(users) + "\n\n" + material(rng.randint(1_000, 6_000))
            messages.append(Message("user", last))
            while sum(len(m.text()) for m in messages) > max_chars and len(messages) > 3:
                del messages[1:3]  # the oldest exchange goes first, as a client would trim
            excess = sum(len(m.text()) for m in messages) - max_chars
            if excess > 0:
                messages[0] = Message("system", messages[0].text()[excess:])
        rows.append(messages)
    return rows
