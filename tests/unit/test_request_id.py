"""``app.new_request_id``: the ids the router makes are what ``str(uuid.uuid4())`` writes."""

from __future__ import annotations

import re
import uuid

from octoroute.app import new_request_id

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_a_new_request_id_is_a_canonical_random_uuid() -> None:
    ids = [new_request_id() for _ in range(2000)]
    for made in ids:
        parsed = uuid.UUID(made)  # no version= argument: that would overwrite the bits checked
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == made
        assert _CANONICAL.fullmatch(made)
    assert len(set(ids)) == len(ids)


def test_every_random_bit_of_a_new_request_id_varies() -> None:
    """The 122 bits a version-4 UUID leaves random are each seen both set and clear."""
    fixed = (0xF000 << 64) | (0xC000 << 48)
    ones = 0
    zeros = 0
    for _ in range(400):
        value = uuid.UUID(new_request_id()).int
        ones |= value
        zeros |= ~value
    assert ones & ~fixed == (1 << 128) - 1 & ~fixed
    assert zeros & ~fixed & ((1 << 128) - 1) == (1 << 128) - 1 & ~fixed
