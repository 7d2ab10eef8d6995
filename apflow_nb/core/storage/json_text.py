"""How JSON values are written to every store: one encoder that never fails.

Inputs and results are checked strictly before they are recorded (a result that is not JSON fails
its task). Event payloads come from executors as they are: what JSON cannot hold is converted here
(datetimes and dates to ISO text, bytes to a short repr, sets to lists, NaN and infinities to None,
anything else to its repr), and strings a database would refuse (lone surrogates, NUL) are
repaired, so one payload can never make a batch of writes fail.
"""
from __future__ import annotations

import json
import math
import re
import threading
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Callable

_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def compact_encoder(*, default: Callable[[Any], Any] = _refuse, ensure_ascii: bool = True, sort_keys: bool = False,
                    allow_nan: bool = False, markers: dict[int, Any] | None = None) -> Callable[[Any], str]:
    """A compact JSON encoder, its C encoder built once (``JSONEncoder.encode`` builds one per call).

    ``markers``: a dict to detect cycles in (None: no check; a cycle ends in RecursionError). One encoder with
    markers must not be shared between threads, and its markers are left behind by an encoding that failed.
    """
    if _c_make_encoder is None:  # pragma: no cover - CPython always has the C encoder
        return json.JSONEncoder(ensure_ascii=ensure_ascii, check_circular=markers is not None, allow_nan=allow_nan,
                                sort_keys=sort_keys, separators=(",", ":"), default=default).encode
    strings = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    encode = _c_make_encoder(markers, default, strings, None, ":", ",", sort_keys, False, allow_nan)
    return lambda value: "".join(encode(value, 0))


_encode_fast = compact_encoder()
_local = threading.local()  # one strict encoder per thread: its circular-reference markers are its own


def _strict(value: Any) -> str:
    """JSON text with non-ASCII kept, NaN refused and cycles named."""
    pair = getattr(_local, "strict", None)
    if pair is None:
        markers: dict[int, Any] = {}
        pair = _local.strict = (markers, compact_encoder(ensure_ascii=False, markers=markers))
    try:
        return pair[1](value)
    except BaseException:
        pair[0].clear()  # an encoding that failed half way leaves its markers behind
        raise


_scan = json.JSONDecoder().scan_once  # the C scanner json.loads ends in, without its Python layers


def loads(text: str) -> Any:
    """``json.loads(text)`` for text this package wrote (compact); any other text goes by ``json.loads``."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the usual JSONDecodeError
    return value if end == len(text) else json.loads(text)


def strict(value: Any) -> tuple[str | None, str | None]:
    """``(text, None)`` when ``value`` is JSON every store can hold, else ``(None, what is wrong)``."""
    try:
        text = _strict(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if "\\u0000" in text:  # json escapes NUL even when it keeps other characters as they are
        return None, "a string holds a NUL character (\\x00), which PostgreSQL cannot store"
    if text.isascii():
        return text, None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return None, f"a string holds a lone surrogate character at position {exc.start} (not valid UTF-8)"
    return text, None
_BAD_ESCAPE = re.compile(r"\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}")
MAX_REPR = 200


class Encoded(str):
    """JSON text already encoded (and checked) elsewhere: written as it is, not encoded again."""

    __slots__ = ()


def dumps(value: Any) -> str:
    """JSON text for ``value``; never raises (see the module docstring for what is converted)."""
    if type(value) is Encoded:
        return value
    try:
        text = _encode_fast(value)
    except (TypeError, ValueError, RecursionError):
        text = _encode(jsonable(value))
    if "\\u" in text and _BAD_ESCAPE.search(text):
        text = _BAD_ESCAPE.sub(r"\\ufffd", text)
    return text


def jsonable(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that JSON can hold (converted as described above)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 50:
        return short_repr(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value, depth + 1)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    return short_repr(value)


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to a readable length."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__
        text = f"<{type(value).__name__} (repr failed: {type(exc).__name__})>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR - 1] + "…"
