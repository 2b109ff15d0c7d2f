"""LangChain adapters (extra `langchain`): chat history backed by ConversationMemory, LLM summarizer and scorer.

Importing this module needs `langchain-core`; the rest of the library does not.

Deprecated upstream: langchain-core deprecates `BaseChatMessageHistory` (1.6.4) and `RunnableWithMessageHistory`
(1.3.3) in favour of LangGraph persistence, and removes them in 2.0; the extra caps langchain-core below 2.0 until
then. New agents use `memory_client.langgraph` (a checkpointer and a store). The summarizer and scorer adapters
are not affected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable

from memory_client._conversation import ConversationMemory
from memory_client._messages import Message, RejectedEntry

__all__ = ["LangChainImportanceScorer", "LangChainSummarizer", "MemoryChatMessageHistory"]

SUMMARY_PROMPT: Final = (
    "Summarize the following conversation concisely. Preserve key facts, figures, decisions, errors and action "
    "items; drop small talk.\n{previous}\nConversation:\n{conversation}\n\nSummary:"
)
IMPORTANCE_PROMPT: Final = (
    "Rate the importance of this message for the rest of the conversation on a scale of 0 to 10, where 10 "
    "means it holds decisions, figures or action items that must not be forgotten. Answer with the number "
    "only.\n\nMessage: {message}\n\nImportance:"
)
_ROLES: Final[dict[str, type[BaseMessage]]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
}
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")


def _to_langchain(message: Message) -> BaseMessage:
    if message.role == "tool":
        return ToolMessage(content=message.content, tool_call_id=str(message.metadata.get("tool_call_id", "")))
    return _ROLES.get(message.role, HumanMessage)(content=message.content)


def _content(reply: Any) -> str:
    content = getattr(reply, "content", reply)
    return content if isinstance(content, str) else str(content)


class MemoryChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history whose every message is one append to a ConversationMemory.

    `window` bounds what `messages` loads (the newest messages); None loads the whole conversation.
    """

    def __init__(self, memory: ConversationMemory, window: int | None = 200) -> None:
        self.memory = memory
        self.window = window

    @property
    def rejected(self) -> tuple[RejectedEntry, ...]:
        """What the last load of `messages` skipped (see `ConversationMemory.rejected`)."""
        return self.memory.rejected

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        stored = self.memory.messages() if self.window is None else self.memory.last(self.window)
        return [_to_langchain(m) for m in stored]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch: list[tuple[str, str, dict[str, Any] | None]] = []
        for message in messages:
            meta = {"tool_call_id": message.tool_call_id} if isinstance(message, ToolMessage) else None
            batch.append((message.type, _content(message), meta))
        self.memory.extend(batch)

    def clear(self) -> None:
        self.memory.clear()


class LangChainSummarizer:
    """A Summarizer that asks any chat model or runnable (string in, message or string out)."""

    def __init__(self, model: Runnable[Any, Any]) -> None:
        self._model = model

    def summarize(self, messages: Sequence[Message], previous: str | None = None) -> str:
        conversation = "\n".join(f"{m.role}: {m.content}" for m in messages)
        earlier = f"Summary of what came before:\n{previous}\n" if previous else ""
        return _content(self._model.invoke(SUMMARY_PROMPT.format(previous=earlier, conversation=conversation))).strip()


class LangChainImportanceScorer:
    """An ImportanceScorer that asks a model for 0-10; an unparsable answer scores 0."""

    def __init__(self, model: Runnable[Any, Any]) -> None:
        self._model = model

    def score(self, message: Message) -> float:
        match = _NUMBER.search(_content(self._model.invoke(IMPORTANCE_PROMPT.format(message=message.content))))
        return min(10.0, float(match.group())) if match else 0.0
