"""kopf handlers, one module per kind; importing this package registers them all."""

from memory_operator.handlers import compliancepolicy, memorystore, memorytenant, startup

__all__ = ["compliancepolicy", "memorystore", "memorytenant", "startup"]
