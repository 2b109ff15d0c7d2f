"""The API of agentmemory.io: pydantic models are the single source of truth for the CRDs in `crds/`."""
