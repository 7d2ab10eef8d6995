"""The inputs a task runs with: its own inputs merged with its completed dependencies' results."""
from __future__ import annotations

from typing import Any


def merge_dependency_results(inputs: dict[str, Any], dependencies: list[dict[str, Any]],
                             results: dict[str, Any], field_names: frozenset[str] | None) -> dict[str, Any]:
    """The task's own inputs plus each completed dependency's result.

    For each completed dependency, in list order: when the executor declares input fields and
    the result (unwrapped from a ``"result"`` dict if it has one) has fields of those names, they
    are copied in; otherwise the whole result goes to ``inputs[<dependency id>]``. Dependency
    values override the task's own inputs of the same name (the original project's rule).
    """
    merged = dict(inputs or {})
    for dep in dependencies:
        dep_id = dep["id"]
        if dep_id not in results:
            continue
        result = results[dep_id]
        if field_names and isinstance(result, dict):
            payload = result["result"] if isinstance(result.get("result"), dict) else result
            matched = {k: v for k, v in payload.items() if k in field_names}
            if matched:
                merged.update(matched)
                continue
        merged[dep_id] = result
    return merged


class DeclaredFields:
    """The input field names an executor declares (pydantic ``inputs_schema`` or JSON Schema
    ``properties``), cached per class for pydantic models (a plain executor's JSON Schema may
    depend on its configuration, so it is asked each time)."""

    def __init__(self) -> None:
        self._cache: dict[type, frozenset[str] | None] = {}

    def of(self, executor: Any) -> frozenset[str] | None:
        """The names, or None when the executor declares none."""
        cls = type(executor)
        cached = self._cache.get(cls, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        model = getattr(cls, "inputs_schema", None)
        if model is not None and hasattr(model, "model_fields"):
            names = frozenset(model.model_fields)
            self._cache[cls] = names
            return names
        try:
            props = (executor.get_input_schema() or {}).get("properties")
        except Exception:
            props = None
        return frozenset(props) if isinstance(props, dict) and props else None
