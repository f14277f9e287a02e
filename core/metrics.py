"""Prometheus metrics (prometheus-client), named once here and served at /metrics.

What support and operations watch: request latency per route, who wrote what users were shown
(LLM or template) and whether it passed the faithfulness checks, LLM calls and fallbacks per stage,
and the LLM breaker's state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_LATENCY = Histogram(
    "chronotope_http_request_seconds",
    "Time to answer an HTTP request, by route template, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40),
    registry=REGISTRY,
)
EXPLANATIONS = Counter(
    "chronotope_explanations_total",
    "Explanations checked for faithfulness, by who wrote the text (llm, template) and the verdict.",
    ["writer", "verdict"],
    registry=REGISTRY,
)
LLM_CALLS = Counter(
    "chronotope_llm_calls_total",
    "Calls to the LLM server by stage (rerank, explain, understand, reply) and outcome (ok, error).",
    ["stage", "outcome"],
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "chronotope_llm_fallbacks_total",
    "Times a stage served its fallback (feature order, template, rules) instead of the LLM's output.",
    ["stage"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "chronotope_llm_breaker_state",
    "The LLM circuit breaker: 0 closed, 1 half-open (one probe allowed), 2 open.",
    ["server"],
    registry=REGISTRY,
)
BREAKER_CODES = {"closed": 0, "half-open": 1, "open": 2}
STATE_VERSION = Gauge(
    "chronotope_state_version",
    "The store's state version (core.state_changes seq) this worker serves.",
    registry=REGISTRY,
)
TRACE_QUEUE = Gauge(
    "chronotope_trace_queue",
    "Recommendation traces accepted but not yet written to the store.",
    registry=REGISTRY,
)
TRACES_WRITTEN = Counter(
    "chronotope_traces_written_total",
    "Recommendation traces written to the store by the batched writer, by outcome (ok, retried).",
    ["outcome"],
    registry=REGISTRY,
)
LLM_SHED = Counter(
    "chronotope_llm_shed_total",
    "Requests served without the LLM because its queue (agent.llm.admission) was full.",
    registry=REGISTRY,
)
LLM_QUEUE = Gauge(
    "chronotope_llm_queue",
    "Requests waiting for an LLM slot in this worker.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
