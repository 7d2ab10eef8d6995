"""Input validation shared by executors and tools: JSON Schema and pydantic models.

Both paths return the inputs with defaults filled in, or raise InputValidationError listing
every problem with its location (``inputs.count: Input should be a valid integer``).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from apflow_nb.core.errors import InputValidationError

_validators: dict[str, Any] = {}


def _json_validator(schema: dict[str, Any]) -> Any:
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _validators.get(key)
    if validator is None:
        import jsonschema  # imported lazily: keeps ``import apflow_nb`` fast

        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        validator = cls(schema)
        _validators[key] = validator
    return validator


def validate_json_schema(schema: dict[str, Any] | None, inputs: dict[str, Any], *, owner: str) -> dict[str, Any]:
    """Validate ``inputs`` against a JSON Schema, filling top-level ``default`` values first."""
    data = dict(inputs or {})
    if not schema:
        return data
    props = schema.get("properties")
    if isinstance(props, dict):
        for key, spec in props.items():
            if key not in data and isinstance(spec, dict) and "default" in spec:
                data[key] = copy.deepcopy(spec["default"])
    validator = _json_validator(schema)
    problems = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if problems:
        lines = []
        for err in problems:
            where = ".".join(["inputs", *map(str, err.absolute_path)])
            lines.append(f"{where}: {err.message}")
        raise InputValidationError(
            f"Invalid inputs for {owner}: " + "; ".join(lines)
            + ". Fix the task's inputs (or the dependency that provides them).")
    return data


def validate_model(model: type, inputs: dict[str, Any], *, owner: str) -> dict[str, Any]:
    """Validate ``inputs`` with a pydantic model; return them with the model's values and defaults.

    Keys the model does not declare (for example dependency results keyed by task id) are kept.
    """
    from pydantic import ValidationError

    try:
        validated = model.model_validate(inputs or {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(["inputs", *map(str, err.get("loc", ()))])
            lines.append(f"{where}: {err.get('msg')}")
        raise InputValidationError(
            f"Invalid inputs for {owner}: " + "; ".join(lines)
            + ". Fix the task's inputs (or the dependency that provides them).") from None
    data = dict(inputs or {})
    for name in type(validated).model_fields:
        data[name] = getattr(validated, name)
    return data
