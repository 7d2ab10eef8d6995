"""BaseTask: an ExecutableTask whose inputs are checked by a pydantic model (the seed's Method 2)."""
from __future__ import annotations

from typing import Any, ClassVar

from apflow_nb.core.interfaces.executable_task import ExecutableTask
from apflow_nb.core.validation import validate_model


class BaseTask(ExecutableTask):
    """Set ``inputs_schema`` to a pydantic model: inputs are validated before ``execute`` and
    ``execute`` receives the validated values with the model's defaults filled in."""

    inputs_schema: ClassVar[type | None] = None

    def get_input_schema(self) -> dict[str, Any]:
        """The JSON Schema of ``inputs_schema`` (empty when none is set)."""
        model = self.inputs_schema
        return model.model_json_schema() if model is not None else {}

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Validate with the pydantic model; keys it does not declare are passed through."""
        model = self.inputs_schema
        if model is None:
            return dict(inputs or {})
        return validate_model(model, inputs, owner=f"executor {self.id!r}")

    def input_field_names(self) -> list[str]:
        """Names of the declared input fields."""
        model = self.inputs_schema
        return list(model.model_fields) if model is not None else []
