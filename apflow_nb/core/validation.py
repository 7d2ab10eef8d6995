"""Input validation shared by executors and tools: JSON Schema and pydantic models.

Both paths return the inputs with defaults filled in, or raise InputValidationError listing
every problem with its location (``inputs.count: Input should be a valid integer``). A message
never repeats an input's value (it may be a secret): it names the place and the rule broken.
"""
from __future__ import annotations

import copy
import json
import weakref
from typing import Any

from apflow_nb.core.errors import InputValidationError

_validators: dict[str, Any] = {}
_field_names: "weakref.WeakKeyDictionary[type, tuple[str, ...]]" = weakref.WeakKeyDictionary()  # per model class


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
            lines.append(f"{where}: {_rule(err)}")
        raise InputValidationError(
            f"Invalid inputs for {owner}: " + "; ".join(lines)
            + ". Fix the task's inputs (or the dependency that provides them).")
    return data


_RULES = {
    "type": "is not of type {v}", "enum": "must be one of {v}", "const": "must equal {v}",
    "minimum": "must be >= {v}", "maximum": "must be <= {v}", "exclusiveMinimum": "must be > {v}",
    "exclusiveMaximum": "must be < {v}", "multipleOf": "must be a multiple of {v}",
    "minLength": "must have at least {v} character(s)", "maxLength": "must have at most {v} character(s)",
    "pattern": "must match the pattern {v}", "format": "must be a valid {v}",
    "minItems": "must have at least {v} item(s)", "maxItems": "must have at most {v} item(s)",
    "uniqueItems": "must not repeat items", "minProperties": "must have at least {v} field(s)",
    "maxProperties": "must have at most {v} field(s)", "anyOf": "matches none of the allowed schemas",
    "oneOf": "must match exactly one of the allowed schemas", "not": "matches a schema it must not match",
}


def _rule(err: Any) -> str:
    """What ``err`` broke, from the schema side only: ``error.message`` quotes the instance (maybe a secret)."""
    kind, value = err.validator, err.validator_value
    instance = err.instance
    if kind == "required":
        present = set(instance) if isinstance(instance, dict) else set()
        missing = [name for name in (value or []) if name not in present]
        return "; ".join(f"{name!r} is a required property" for name in missing) or "a required property is missing"
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = set((err.schema or {}).get("properties") or {})
        extra = sorted(str(k) for k in instance if k not in allowed)
        return f"field(s) not allowed here: {', '.join(map(repr, extra))}"
    if kind in ("type", "enum", "const", "pattern", "format"):
        if kind == "type":
            shown = " or ".join(map(repr, value)) if isinstance(value, list) else repr(value)
        else:
            shown = repr(value) if kind in ("pattern", "const") else value
        return _RULES[kind].format(v=shown)
    template = _RULES.get(str(kind))
    if template is not None:
        return template.format(v=value)
    return f"does not satisfy the schema's {kind!r} rule"


def validate_model(model: type, inputs: dict[str, Any], *, owner: str) -> dict[str, Any]:
    """Validate ``inputs`` with a pydantic model; return them with the model's values and defaults.

    Keys the model does not declare (for example dependency results keyed by task id) are kept.
    """
    try:
        validated = model.model_validate(inputs or {})
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        lines = []
        for err in exc.errors():
            where = ".".join(["inputs", *map(str, err.get("loc", ()))])
            lines.append(f"{where}: {err.get('msg')}")
        raise InputValidationError(
            f"Invalid inputs for {owner}: " + "; ".join(lines)
            + ". Fix the task's inputs (or the dependency that provides them).") from None
    data = dict(inputs or {})
    cls = type(validated)
    names = _field_names.get(cls)
    if names is None:
        names = _field_names[cls] = tuple(cls.model_fields)
    for name in names:
        data[name] = getattr(validated, name)
    return data
