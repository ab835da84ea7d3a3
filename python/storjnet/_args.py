"""Argument checks shared by Node and Client: each returns the value the API takes, or raises TypeError /
ValueError naming the parameter (the messages of docs/api.md's -32602 errors)."""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from ._limits import MAX_EVENT_JSON, MAX_KEY, MAX_MESSAGE_JSON, MAX_TOPIC, MAX_VALUE_SIZE

_HEX = re.compile(r"[0-9a-fA-F]*\Z")


def _type_name(v: Any) -> str:
    return type(v).__name__


def key(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"key: expected a str, got {_type_name(v)}")
    n = len(v.encode("utf-8"))
    if n > MAX_KEY:
        raise ValueError(f"key: key too large ({n} bytes, at most {MAX_KEY})")
    return v


def topic(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"topic: expected a str, got {_type_name(v)}")
    if not v:
        raise ValueError("topic: empty topic")
    n = len(v.encode("utf-8"))
    if n > MAX_TOPIC:
        raise ValueError(f"topic: topic too large ({n} bytes, at most {MAX_TOPIC})")
    return v


def _hex_id(v: Any, name: str, what: str, chars: int) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{name}: expected a str of {chars} hex characters, got {_type_name(v)}")
    if not _HEX.match(v):
        raise ValueError(f"{name}: bad hex in {what}")
    if len(v) != chars:
        raise ValueError(f"{name}: wrong {what} length ({len(v)} hex characters, expected {chars})")
    return v.lower()


def node_id(v: Any) -> str:
    return _hex_id(v, "node_id", "node id", 40)


def stream_id(v: Any) -> str:
    return _hex_id(v, "stream_id", "stream id", 64)


def json_text(v: Any, name: str, limit: int) -> bytes:
    """The compact JSON text of `v` (as the daemon sends it), at most `limit` bytes."""
    try:
        text = json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: not a JSON value ({e})") from None
    if len(text) > limit:
        raise ValueError(f"{name}: {name} too large ({len(text)} bytes of JSON, at most {limit})")
    return text


def value(v: Any) -> bytes:
    return json_text(v, "value", MAX_VALUE_SIZE)


def message(v: Any) -> bytes:
    return json_text(v, "message", MAX_MESSAGE_JSON)


def event(v: Any) -> bytes:
    return json_text(v, "event", MAX_EVENT_JSON)


def data(v: Any) -> bytes:
    if isinstance(v, str) or not isinstance(v, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected bytes (or bytearray, memoryview), got {_type_name(v)}")
    return bytes(v)


def size(v: Any) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"size: expected a non-negative int or None, got {_type_name(v)}")
    if v < 0:
        raise ValueError("size: must not be negative")
    return v
