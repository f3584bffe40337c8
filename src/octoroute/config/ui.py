"""``[ui]``: the dashboard and the in-memory windows and decisions behind its state API.

Everything here applies on reload: turning the dashboard off stops recording from the next
request on, a new ``decisions`` size keeps the newest decisions that fit.
"""

from __future__ import annotations

from typing import Final

from octoroute.config.reader import Table
from octoroute.config.schema import DEFAULT_PROMPT_PREVIEW_CHARS, DEFAULT_UI_DECISIONS, UiConfig

MAX_DECISIONS: Final = 10_000
"""More kept decisions than this would make ``GET /admin/state`` a bulk export, not a view."""
MAX_PROMPT_PREVIEW_CHARS: Final = 2000
"""A preview, not a copy of the conversation."""


def check_ui(root: Table) -> UiConfig | None:
    """``[ui]``: optional; ``None`` after a problem."""
    table = root.table("ui")
    if table is None:
        return None
    enabled = table.boolean("enabled", True)
    show_prompts = table.boolean("show_prompts", False)
    decisions = table.integer("decisions", DEFAULT_UI_DECISIONS, low=1, high=MAX_DECISIONS)
    preview = table.integer(
        "prompt_preview_chars", DEFAULT_PROMPT_PREVIEW_CHARS, low=1, high=MAX_PROMPT_PREVIEW_CHARS
    )
    table.close()
    if enabled is None or show_prompts is None or decisions is None or preview is None:
        return None
    return UiConfig(
        enabled=enabled,
        show_prompts=show_prompts,
        decisions=decisions,
        prompt_preview_chars=preview,
    )
