"""kopf handlers, one module per kind; importing this package registers them all."""

from memory_operator.handlers import memorystore, memorytenant, startup

__all__ = ["memorystore", "memorytenant", "startup"]
