"""Token accounting, trimming with summaries, the context optimizer and the cross-agent report."""

from __future__ import annotations

from memory_client import (
    ContextOptimizer,
    ExtractiveSummarizer,
    HeuristicTokenCounter,
    KeywordImportanceScorer,
    Message,
)

from .conftest import Provisioner, Tenant

COUNTER = HeuristicTokenCounter()
SMALL_TALK = [Message("human", "hi there"), Message("ai", "hello, how are you"), Message("human", "fine thanks")]
IMPORTANT = Message("human", "We decided to refund order 4471 by Friday")


def test_heuristic_counter_counts_words_and_punctuation() -> None:
    assert COUNTER.count("Hello, world!") == 4
    assert COUNTER.count("") == 0


def test_keyword_scorer_prefers_figures_decisions_errors_and_action_items() -> None:
    scorer = KeywordImportanceScorer()
    assert scorer.score(SMALL_TALK[0]) == 0
    assert scorer.score(IMPORTANT) > scorer.score(Message("human", "order 4471"))
    assert scorer.score(Message("ai", "The export failed with an error")) > 0


def test_extractive_summary_keeps_the_important_sentence() -> None:
    summary = ExtractiveSummarizer().summarize([*SMALL_TALK, IMPORTANT])
    assert "refund order 4471" in summary and "hello" not in summary


def test_optimizer_keeps_recent_and_important_and_summarizes_the_rest() -> None:
    history = [IMPORTANT, *SMALL_TALK * 10]  # 223 tokens; the important message (13) fits beside the recent two
    optimizer = ContextOptimizer(counter=COUNTER, keep_recent=2)
    result = optimizer.optimize(history, budget=60)
    assert result.messages == [IMPORTANT, *history[-2:]]
    assert result.summary is not None and result.stats.summarized_messages == len(history) - 3
    spent = sum(map(optimizer.tokens, result.messages)) + optimizer.tokens(Message("system", result.summary))
    assert spent == result.stats.optimized_tokens <= 60 and result.stats.compression_ratio < 1
    assert optimizer.statistics()["optimizations"] == 1


def test_the_budget_bounds_the_summary_too() -> None:
    """At a tight budget the summary costs more than the room reserved for it: an older message is folded into it
    instead of kept, and what still does not fit is cut, so the result never exceeds the budget."""
    history = [IMPORTANT, *SMALL_TALK * 10]
    optimizer = ContextOptimizer(counter=COUNTER, keep_recent=2)
    for budget in (20, 30, 40, 45, 50, 60, 80):
        result = optimizer.optimize(history, budget=budget)
        spent = sum(map(optimizer.tokens, result.messages))
        spent += optimizer.tokens(Message("system", result.summary)) if result.summary else 0
        assert spent == result.stats.optimized_tokens <= budget, budget
        assert result.messages[-2:] == history[-2:]  # the recent messages stay
    tight = optimizer.optimize(history, budget=40)
    assert "4471" in (tight.summary or "")  # folded into the summary, not lost


def test_optimizer_passes_a_history_that_fits_through_untouched() -> None:
    result = ContextOptimizer(counter=COUNTER).optimize(SMALL_TALK, budget=1000)
    assert result.messages == SMALL_TALK and result.summary is None and result.stats.compression_ratio == 1


def test_trim_folds_what_it_removes_into_the_stored_summary(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1", counter=COUNTER, summarizer=ExtractiveSummarizer())
    chat.extend([(m.role, m.content) for m in [IMPORTANT, *SMALL_TALK * 5]])
    result = chat.trim_to_tokens(30)
    assert result.removed > 0 and chat.count() == result.kept
    assert "4471" in (chat.summary() or "")


def test_a_second_trim_keeps_the_first_summary(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1", counter=COUNTER, summarizer=ExtractiveSummarizer())
    chat.extend([(m.role, m.content) for m in [IMPORTANT, *SMALL_TALK * 5]])
    chat.trim_to_tokens(30)
    chat.extend([("ai", "The build failed with error 502"), *[(m.role, m.content) for m in SMALL_TALK * 5]])
    chat.trim_to_tokens(30)
    summary = chat.summary() or ""
    assert "4471" in summary and "502" in summary


def test_trim_without_a_summarizer_just_drops(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1", counter=COUNTER)
    chat.extend([("human", "x y z")] * 10)
    assert chat.trim_to_tokens(8 * 3).kept == 3 and chat.summary() is None


def test_optimized_view_of_a_stored_conversation(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1", counter=COUNTER)
    chat.extend([(m.role, m.content) for m in [IMPORTANT, *SMALL_TALK * 10]])
    result = chat.optimized(60)
    assert result.stats.original_messages == 31 and result.stats.optimized_tokens < result.stats.original_tokens


def test_cross_agent_report_counts_dates_and_previews(tenant: Tenant) -> None:
    tenant.memory("alpha").conversation("c", "u1").extend([("human", "a"), ("ai", "alpha says hi")])
    tenant.memory("beta").conversation("c", "u1").append("human", "beta here")
    report = {r.agent: r for r in tenant.memory(None).agent_report()}
    assert (report["alpha"].messages, report["alpha"].preview) == (2, "alpha says hi")
    assert (report["beta"].messages, report["beta"].preview) == (1, "beta here")
    assert report["alpha"].last_update is not None


def test_a_strict_agents_report_hides_other_agents_previews(provision: Provisioner) -> None:
    strict = provision.tenant("strict")
    strict.memory("alpha").conversation("c", "u1").append("human", "alpha only")
    strict.memory("beta").conversation("c", "u1").append("human", "beta only")
    report = {r.agent: r for r in strict.memory("beta").agent_report()}
    assert report["alpha"].messages == 1 and report["alpha"].preview is None
    assert report["beta"].preview == "beta only"
