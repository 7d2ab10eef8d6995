"""Cache keys: a fingerprint of an executor's code and the canonical JSON of its inputs, hashed.

Pure functions (no database library): the engine computes keys on its hot path; ``cache.py`` stores entries.
"""
from __future__ import annotations

import hashlib
import inspect
import textwrap
import weakref
from typing import Any

from apflow_nb.core.storage.json_text import compact_encoder

SOURCE_ATTRIBUTE = "__apflow_source__"  # what %%executor sets to the cell's source
_fingerprints: "weakref.WeakKeyDictionary[type, str]" = weakref.WeakKeyDictionary()


def code_of(obj: Any) -> str:
    """The text that stands for ``obj``'s code: its recorded cell source, its source, else its bytecode."""
    recorded = getattr(obj, SOURCE_ATTRIBUTE, None)
    if isinstance(recorded, str):
        return recorded
    function = getattr(obj, "function", None)  # function executors: the function is the code
    target = function if callable(function) else obj
    recorded = getattr(target, SOURCE_ATTRIBUTE, None)
    if isinstance(recorded, str):
        return recorded
    try:
        return textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        return _bytecode(target)


def _bytecode(obj: Any) -> str:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return _code_text(code)
    parts = [f"{name}={_code_text(value.__code__)}" for name, value in sorted(vars(obj).items())
             if callable(value) and hasattr(value, "__code__")]
    return "\n".join(parts) or repr(obj)


def _code_text(code: Any) -> str:
    consts = [(_code_text(c) if hasattr(c, "co_code") else repr(c)) for c in code.co_consts]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}"


def fingerprint(cls: type, cache_version: str | None = None) -> str:
    """A short hash of an executor class's code (cached per class) and its ``cache_version``."""
    digest = _fingerprints.get(cls)
    if digest is None:
        digest = _fingerprints[cls] = hashlib.sha256(code_of(cls).encode("utf-8", "replace")).hexdigest()[:32]
    return digest if cache_version is None else f"{digest}:{cache_version}"


def _canonical(value: Any) -> Any:
    get_secret = getattr(value, "get_secret_value", None)
    if callable(get_secret):  # pydantic SecretStr/SecretBytes: the real value keys the entry (hashed only)
        return {"__secret__": hashlib.sha256(repr(get_secret()).encode()).hexdigest()}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return repr(value)


canonical_json = compact_encoder(default=_canonical, ensure_ascii=False, sort_keys=True, allow_nan=True)
"""The canonical JSON text of a dict of inputs (sorted keys, compact, non-ASCII kept), as ``json.dumps`` would."""


def cache_key(executor_id: str, code: str, inputs: dict[str, Any]) -> str:
    """The key of one call: executor id, code fingerprint and the canonical JSON of the inputs, hashed."""
    return hashlib.sha256(f"{executor_id}\x1f{code}\x1f{canonical_json(inputs)}".encode("utf-8", "replace")).hexdigest()
