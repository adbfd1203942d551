"""Reading JSON that strangers send: bounded depth, no NUL characters.

Python's json module recurses once per nesting level, so 50,000 nested brackets ended
in a RecursionError (a 500) instead of a refusal. No input of Custos nests deeper
than a few levels; MAX_DEPTH leaves room and refuses the rest with a reason.
"""

from __future__ import annotations

import json

MAX_DEPTH = 32
NUL_MESSAGE = "The JSON holds a NUL character (\\u0000), which no field accepts."


class UnsafeJSON(ValueError):
    """The text is not JSON Custos accepts; the message says why, in plain words."""


class NotJSON(UnsafeJSON):
    """The text is not JSON at all."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH):
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnsafeJSON(f"The JSON is nested more than {max_depth} levels deep.") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise NotJSON(f"Not valid JSON: {exc.msg} ({where}).") from None
    check(value, max_depth=max_depth)
    return value


def check(value, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than ``max_depth`` and NUL in any key or text (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise UnsafeJSON(
                    "The JSON holds a NUL character (\\u0000), which no field accepts."
                )
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise UnsafeJSON(f"The JSON is nested more than {max_depth} levels deep.")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)
