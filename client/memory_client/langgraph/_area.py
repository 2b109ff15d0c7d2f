"""Where the LangGraph adapters keep their keys: one agent's area, or the tenant's shared area."""

from __future__ import annotations

from memory_client._client import AgentMemory
from memory_client._keys import check_name
from memory_client.errors import ConfigError

__all__ = ["area_of"]


def area_of(memory: AgentMemory, agent: str | None, shared: bool) -> str:
    """The key prefix of `agent`'s area (default the credentials' own agent), or of the shared area."""
    config = memory.config
    if shared:
        return config.shared_prefix
    name = agent or config.agent_id
    if name is None:
        raise ConfigError("these are tenant credentials without an agent: pass agent= (or shared=True)")
    return config.agent_area(check_name(name, "agent"))
