"""Shared by the browser journeys."""

from __future__ import annotations

import re

# Generous: a cold CI runner may take a while to start Chromium and the worker.
TIMEOUT_MS = 20_000


def label(text: str) -> re.Pattern:
    """A form label by its whole text; Django adds a ':' suffix."""
    return re.compile(rf"^{re.escape(text)}:?$")
