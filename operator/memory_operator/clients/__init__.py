"""The only modules that do I/O: the Kubernetes API and the Redis/Valkey admin connection."""
