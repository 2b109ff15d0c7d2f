"""A LangGraph agent on the tenant's memory, as an agent Pod would run it: its Secret's environment in, one turn
of a conversation per run, the thread resumed from the checkpointer by whichever process runs the next turn.

    python -m memory_sandbox.langgraph_agent <thread id> <user id> <message> <reply>

The chat model is LangChain's FakeListChatModel answering `<reply>` (no model provider is reachable here); the
rest is what a real agent does: `TenantCheckpointer` keeps the thread (short-term memory), `TenantStore` what the
agent learned about the user across threads (long-term memory). Prints the thread's messages and the user's
remembered facts as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.store.base import BaseStore

from memory_client import AgentMemory
from memory_client.langgraph import TenantCheckpointer, TenantStore, subject_at

__all__ = ["main", "turn"]


def turn(memory: AgentMemory, thread: str, user: str, message: str, reply: str) -> dict[str, Any]:
    """One turn of `thread` for `user`: the reply, the thread's messages so far, and the user's facts."""
    model = FakeListChatModel(responses=[reply])

    def chat(state: MessagesState, *, store: BaseStore) -> dict[str, Any]:
        answer = model.invoke(state["messages"])
        store.put(("facts", user), "last-request", {"text": state["messages"][-1].content})
        return {"messages": [answer]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    store = TenantStore(memory, subject=subject_at(1))  # ("facts", <user id>): the user is the data subject
    graph = builder.compile(checkpointer=TenantCheckpointer(memory), store=store)
    config: RunnableConfig = {"configurable": {"thread_id": thread, "user_id": user}}  # user_id: its subject
    state = graph.invoke({"messages": [HumanMessage(message)]}, config)
    facts = {item.key: item.value for item in store.search(("facts", user))}
    return {"messages": [[m.type, m.content] for m in state["messages"]], "facts": facts}


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with AgentMemory.from_env() as memory:
        print(json.dumps(turn(memory, *argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
