"""`kubectl agentmemory`: the kubectl plugin of agent-memory-operator (status, report, verify-audit)."""
