"""Named errors of history(), events() and compare(): each says which argument, what was wrong and how to fix it."""
from __future__ import annotations

from apflow_nb.core.errors import ApflowError


class HistoryQueryError(ApflowError, ValueError):
    """A history()/events()/compare() argument that cannot be turned into a query; nothing was read."""


class FilterError(HistoryQueryError, TypeError):
    """A filter argument (status=, user_id=, root_id=, since=, limit=, ...) has a value of the wrong type or form.

    Also a TypeError, so code that caught the raw TypeError of earlier versions still catches it."""

    def __init__(self, function: str, argument: str, value: object, expected: str):
        self.argument, self.value = argument, value
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{function}({argument}={shown}): {argument} must be {expected}")


class WhereError(HistoryQueryError):
    """A ``where=`` expression (or an ``order_by=`` / ``columns=`` entry) that is not in the filter language.

    ``position`` is the 0-based character offset of the offending part in ``expression`` (None: the whole)."""

    def __init__(self, message: str, expression: str = "", position: int | None = None, argument: str = "where"):
        self.expression, self.position, self.argument = expression, position, argument
        self.reason = message
        text = f"{argument}={expression!r}: {message}"
        if expression and position is not None:
            line, column = _line_and_column(expression, position)
            where = f"column {column + 1}" if "\n" not in expression else f"line {line + 1}, column {column + 1}"
            source = expression.splitlines()[line] if expression.splitlines() else expression
            text += f" (at {where})\n    {source}\n    {' ' * column}^"
        super().__init__(text)


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    line = before.count("\n")
    return line, position - (before.rfind("\n") + 1)
