"""One function assembles the serving core, for the API and for batch jobs alike.

From settings and the store: the domain (what the store's catalog is), the retriever with the
domain's retrieval plan, the LLM gateway (one client, one breaker per server, one bounded queue),
the stages (rerank, explanations), the per-request user loader, the records, the recommendation
pipeline and the chat. Callers add what is theirs around it (the API: the state follower, the
background re-miner, the rate limiter; a batch: nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.chat.agent import ChatAgent
from agent.context import UserLoader
from agent.llm.admission import LLMAdmission
from agent.llm.breaker import breaker_for
from agent.llm.client import make_openai_client
from agent.llm.explain import Explainer
from agent.llm.gateway import LLMGateway
from agent.llm.label_tokens import LabelTokens
from agent.llm.rerank import LLMReranker
from agent.llm.tokens import TokenCounter
from agent.pipeline import RecommendPipeline
from agent.records import Records
from agent.trace_writer import TraceWriter
from core.experiments import ExperimentsConfig, load_experiments
from core.settings import Settings
from domains import resolve
from domains.base import Domain
from retrieval.feedback import FeedbackRules
from retrieval.service import Retriever


@dataclass
class Services:
    settings: Settings
    factory: sessionmaker[Session]
    domain: Domain
    retriever: Retriever
    llm: LLMGateway
    records: Records
    pipeline: RecommendPipeline
    chat: ChatAgent
    traces: TraceWriter | None = None

    def close(self) -> None:
        if self.traces is not None:
            self.traces.flush(timeout=30)


def gateway(settings: Settings, *, client: Any = None, admission: LLMAdmission | None = None) -> LLMGateway:
    """The process's LLM: its client (a custom base URL never falls back to someone's OpenAI key),
    the server's breaker and the bounded queue."""
    llm = settings.llm
    if client is None and llm.enabled:
        client = make_openai_client(settings)
    return LLMGateway(
        client,
        breaker_for(settings.resolved_llm_base_url),
        llm.model_name,
        admission if admission is not None else LLMAdmission(llm.max_in_flight, llm.max_waiting),
        llm.retries,
        enabled=llm.enabled and client is not None,
    )


def build_services(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    retriever: Retriever | None = None,
    domain: Domain | None = None,
    client: Any = None,
    traces: bool = True,
    experiments: ExperimentsConfig | None = None,
    grounding: bool = True,
) -> Services:
    """``client``: an OpenAI-compatible client to use instead of the configured server's (tests);
    ``traces``: batch the trace writes off the request path (the API), else write each in its
    request (batch jobs); ``grounding``: embed the catalog's kinds for the chat."""
    if domain is None:
        with factory() as s:
            domain = resolve(settings.domain, s)
    retriever = retriever or Retriever.load(settings, factory, domain.retrieval_plan(), grounding=grounding)
    llm = gateway(settings, client=client)
    writer = (
        TraceWriter(factory, interval_s=settings.api.trace_interval_s)
        if traces and settings.api.trace_interval_s
        else None
    )
    rules = FeedbackRules.from_settings(settings.feedback)
    records = Records(factory, writer, rules)
    experiments = experiments if experiments is not None else load_experiments(settings.experiments_file)
    users = UserLoader(factory, retriever, domain, rules, experiments)
    reranker = explainer = None
    if llm.enabled:
        # the real server's tokenizer gives the labels' token ids; an injected client gets the grammar
        tokens = LabelTokens(settings) if client is None else None
        reranker = LLMReranker(settings.llm, domain, tokens)
        explainer = Explainer(settings.llm)
    pipeline = RecommendPipeline(users, retriever, domain, records, llm, settings.llm, reranker, explainer)
    chat = ChatAgent(
        pipeline,
        records,
        llm,
        settings.chat,
        grounder=retriever.grounder,
        tokens=_tokens(settings),
        llm_on=settings.chat.llm,
    )
    return Services(settings, factory, domain, retriever, llm, records, pipeline, chat, writer)


def _tokens(settings: Settings) -> TokenCounter:
    if not settings.llm_is_embedded:
        return TokenCounter()
    from agent.llm.provision import model_dir

    return TokenCounter(model_dir(settings) / "tokenizer.json")
