"""Extensions: the registry and the registration functions."""
from apflow_nb.core.extensions.base import Extension
from apflow_nb.core.extensions.registry import ExtensionRegistry, RegistryEntry, get_registry
from apflow_nb.core.extensions.types import ExtensionCategory

__all__ = ["Extension", "ExtensionCategory", "ExtensionRegistry", "RegistryEntry", "get_registry"]
