"""The LangChain adapters: chat history under RunnableWithMessageHistory with a fake model; LLM summarizer."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from memory_client import Message
from memory_client.langchain import (
    LangChainImportanceScorer,
    LangChainSummarizer,
    MemoryChatMessageHistory,
)

from .conftest import Tenant


def test_runnable_with_message_history_persists_both_turns(tenant: Tenant) -> None:
    """RunnableWithMessageHistory works on our history, and langchain-core says it is deprecated (in favour of
    LangGraph persistence: memory_client.langgraph): the warning is asserted, not hidden."""
    memory = tenant.memory("alpha")
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    chain = prompt | FakeListChatModel(responses=["Paris.", "About 2.1 million."])
    with pytest.warns(DeprecationWarning, match="RunnableWithMessageHistory|LangGraph|deprecated"):
        with_history = RunnableWithMessageHistory(
            chain,
            lambda session_id: MemoryChatMessageHistory(memory.conversation(session_id, "user-1")),
            input_messages_key="question",
            history_messages_key="history",
        )
    config = {"configurable": {"session_id": "geo"}}
    assert with_history.invoke({"question": "Capital of France?"}, config=config).content == "Paris."
    with_history.invoke({"question": "Population?"}, config=config)
    stored = memory.conversation("geo", "user-1").messages()
    assert [(m.role, m.content) for m in stored] == [
        ("human", "Capital of France?"),
        ("ai", "Paris."),
        ("human", "Population?"),
        ("ai", "About 2.1 million."),
    ]


def test_history_messages_come_back_as_langchain_messages_and_clear(tenant: Tenant) -> None:
    history = MemoryChatMessageHistory(tenant.memory("alpha").conversation("c", "u1"))
    history.add_messages([HumanMessage("hi"), AIMessage("hello")])
    assert [type(m) for m in history.messages] == [HumanMessage, AIMessage]
    history.clear()
    assert history.messages == []


def test_llm_summarizer_and_scorer_use_the_model() -> None:
    summarizer = LangChainSummarizer(FakeListChatModel(responses=["  They agreed on a refund.  "]))
    assert summarizer.summarize([Message("human", "refund please")]) == "They agreed on a refund."
    scorer = LangChainImportanceScorer(FakeListChatModel(responses=["8", "no idea"]))
    assert scorer.score(Message("human", "x")) == 8.0
    assert scorer.score(Message("human", "x")) == 0.0
