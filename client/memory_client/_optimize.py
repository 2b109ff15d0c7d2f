"""Context optimization: importance scoring and summarization behind small interfaces, and the optimizer.

The defaults need no LLM and are deterministic: a message scores high when it carries numbers, decisions,
errors or action items, and the summary is made of the highest-scoring sentences. LangChain-backed
implementations of the same interfaces live in `memory_client.langchain`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from memory_client._messages import Message
from memory_client._tokens import MESSAGE_OVERHEAD, TokenCounter, default_token_counter

__all__ = [
    "ContextOptimizer",
    "ExtractiveSummarizer",
    "ImportanceScorer",
    "KeywordImportanceScorer",
    "OptimizationStats",
    "OptimizedContext",
    "Summarizer",
]

_ACTION: Final = r"\b(todo|action items?|next steps?|must|need to|follow[- ]up|deadline)\b"
_SIGNALS: Final = (
    (re.compile(r"\d"), 1.0),  # figures, dates, amounts, ids
    (re.compile(r"\b(decid\w*|agreed|approved?|confirm\w*|chose|choose|will use|go with)\b", re.I), 2.0),
    (re.compile(r"\b(error|exception|fail\w*|bug|crash\w*|broken|traceback|refused)\b", re.I), 2.0),
    (
        re.compile(
            r"\b(todo|action item|next step|must|need to|follow[- ]up|deadline|by (mon|tues|wednes|thurs|fri)day)\b",
            re.I,
        ),
        2.0,
    ),
)
_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+|\n+")


@runtime_checkable
class ImportanceScorer(Protocol):
    def score(self, message: Message) -> float: ...


@runtime_checkable
class Summarizer(Protocol):
    def summarize(self, messages: Sequence[Message], previous: str | None = None) -> str: ...


class KeywordImportanceScorer:
    """0 for small talk, up to 7 for a message with figures, a decision, an error and an action item."""

    def score(self, message: Message) -> float:
        return sum(weight for pattern, weight in _SIGNALS if pattern.search(message.content))


class ExtractiveSummarizer:
    """Keeps the most important sentences (by the scorer), in their original order, within `max_chars`."""

    def __init__(self, scorer: ImportanceScorer | None = None, max_chars: int = 1200) -> None:
        self._scorer = scorer or KeywordImportanceScorer()
        self._max_chars = max_chars

    def summarize(self, messages: Sequence[Message], previous: str | None = None) -> str:
        candidates: list[tuple[float, int, str]] = []
        for message in messages:
            for sentence in filter(None, (s.strip() for s in _SENTENCE.split(message.content))):
                probe = Message(role=message.role, content=sentence)
                candidates.append((self._scorer.score(probe), len(candidates), f"{message.role}: {sentence}"))
        budget = self._max_chars - (len(previous) + 1 if previous else 0)
        chosen: list[tuple[int, str]] = []
        for score, order, line in sorted(candidates, key=lambda c: (-c[0], c[1])):
            if score <= 0 or len(line) + 1 > budget:
                continue
            chosen.append((order, line))
            budget -= len(line) + 1
        lines = [line for _, line in sorted(chosen)]
        if previous:
            lines.insert(0, previous)
        if not lines:
            return f"{len(messages)} earlier messages without figures, decisions, errors or action items."
        return "\n".join(lines)


@dataclass(frozen=True)
class OptimizationStats:
    original_messages: int
    kept_messages: int
    summarized_messages: int
    original_tokens: int
    optimized_tokens: int

    @property
    def compression_ratio(self) -> float:
        """Optimized tokens over original tokens (1.0: nothing saved)."""
        return self.optimized_tokens / self.original_tokens if self.original_tokens else 1.0


@dataclass(frozen=True)
class OptimizedContext:
    messages: list[Message]
    summary: str | None
    stats: OptimizationStats


@dataclass
class _Totals:
    optimizations: int = 0
    tokens_saved: int = 0
    messages_summarized: int = 0
    ratios: list[float] = field(default_factory=list)


class ContextOptimizer:
    """Fits a history into a token budget: the newest messages, then the most important older ones, the rest
    folded into a summary (which is itself part of the budget)."""

    def __init__(
        self,
        scorer: ImportanceScorer | None = None,
        summarizer: Summarizer | None = None,
        counter: TokenCounter | None = None,
        keep_recent: int = 4,
    ) -> None:
        self.scorer = scorer or KeywordImportanceScorer()
        self.summarizer = summarizer or ExtractiveSummarizer(self.scorer)
        self.counter = counter or default_token_counter()
        self.keep_recent = keep_recent
        self._totals = _Totals()

    def tokens(self, message: Message) -> int:
        return self.counter.count(message.content) + MESSAGE_OVERHEAD

    def optimize(
        self, messages: Sequence[Message], budget: int, previous_summary: str | None = None
    ) -> OptimizedContext:
        costs = [self.tokens(m) for m in messages]
        original = sum(costs)
        if original <= budget and previous_summary is None:
            stats = OptimizationStats(len(messages), len(messages), 0, original, original)
            return self._record(OptimizedContext(list(messages), None, stats))
        keep: set[int] = set()
        left = budget
        for i in range(len(messages) - 1, max(-1, len(messages) - 1 - self.keep_recent), -1):
            if costs[i] > left:
                break
            keep.add(i)
            left -= costs[i]
        recent = set(keep)
        older = sorted(
            (i for i in range(len(messages)) if i not in keep and i < min(keep, default=len(messages))),
            key=lambda i: (-self.scorer.score(messages[i]), -i),
        )
        # Reserve room for the summary before adding older messages: what is dropped must stay represented.
        reserve = min(left // 3, 200)
        for i in older:
            if self.scorer.score(messages[i]) > 0 and costs[i] <= left - reserve:
                keep.add(i)
                left -= costs[i]
        extras = sorted(keep - recent, key=lambda i: (self.scorer.score(messages[i]), i))  # least important first
        while True:
            dropped = [m for i, m in enumerate(messages) if i not in keep]
            summary = self.summarizer.summarize(dropped, previous_summary) if dropped or previous_summary else None
            room = budget - sum(costs[i] for i in keep) - MESSAGE_OVERHEAD
            fitted = self._fit(summary, room) if summary else None
            if fitted == summary or not extras:
                break
            keep.discard(extras.pop(0))  # the summary does not fit whole: fold an older message into it instead
        summary = fitted  # the budget is a bound: a summary that still does not fit is cut to the room left
        kept = [m for i, m in enumerate(messages) if i in keep]
        optimized = sum(costs[i] for i in keep) + (self.counter.count(summary) + MESSAGE_OVERHEAD if summary else 0)
        stats = OptimizationStats(len(messages), len(kept), len(dropped), original, optimized)
        return self._record(OptimizedContext(kept, summary, stats))

    def _fit(self, summary: str, room: int) -> str | None:
        """`summary` cut to at most `room` tokens: whole lines from the end, then words; None when nothing fits."""
        if self.counter.count(summary) <= room:
            return summary
        lines = summary.split("\n")
        while len(lines) > 1 and self.counter.count("\n".join(lines)) > room:
            lines.pop()
        words = "\n".join(lines).split(" ")
        while words and self.counter.count(" ".join(words)) > room:
            words.pop()
        return " ".join(words) or None

    def _record(self, result: OptimizedContext) -> OptimizedContext:
        totals = self._totals
        totals.optimizations += 1
        totals.tokens_saved += max(0, result.stats.original_tokens - result.stats.optimized_tokens)
        totals.messages_summarized += result.stats.summarized_messages
        totals.ratios.append(result.stats.compression_ratio)
        return result

    def statistics(self) -> dict[str, float]:
        """Totals over this optimizer's life, as the seed's IntelligentContextManager reported them."""
        t = self._totals
        average = sum(t.ratios) / len(t.ratios) if t.ratios else 1.0
        return {
            "optimizations": t.optimizations,
            "tokens_saved": t.tokens_saved,
            "messages_summarized": t.messages_summarized,
            "average_compression_ratio": round(average, 4),
        }
