"""The operator's settings, from the environment (`SRE_OPERATOR_*`): read once when the operator
starts (`handlers/incidents.py` keeps them in kopf's memo) and handed to whatever needs them; no
other module reads the environment for them."""
from __future__ import annotations

import os

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.notify import Sink
from .domain.policy import Caps, LlmConfig, Slo, Thresholds
from .domain.seal import PROCESS_KEY
from .domain.vocabulary import PlannerPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SRE_OPERATOR_")

    # Namespaces a FaultScenario may target besides its own (comma-separated; empty: its own only).
    fault_target_namespaces: str = ""
    # How often an injected scenario checks whether its duration is over.
    revert_check_seconds: float = Field(2.0, gt=0, le=60)

    # Detection: the namespaces whose shop is watched (comma-separated) and the Prometheus to read.
    watch_namespaces: str = ""
    prometheus_url: str = "http://prometheus:9090"
    jaeger_url: str = ""  # Jaeger's query API (e.g. http://jaeger.observability:16686); empty: no traces
    detect_interval_seconds: float = Field(5.0, gt=0, le=300)
    # A breach seen once is read again this soon (not a whole interval later) to confirm it, and so is
    # a namespace where a change is under way (a rollout, a new pod): one Prometheus scrape (the
    # observability chart scrapes every second), so each reading is new data.
    confirm_seconds: float = Field(1.0, gt=0, le=300)
    error_ratio_threshold: float = Field(0.10, gt=0, le=1)
    p95_threshold_seconds: float = Field(0.5, gt=0)
    breach_cycles: int = Field(2, ge=1, le=100)
    cooldown_seconds: float = Field(120.0, ge=0)
    # Validation's SLO: the P95 objective is the detector's threshold; errors have their own.
    slo_error_ratio: float = Field(0.05, gt=0, le=1)
    # Pipeline: default mode for incidents that name none, settle window before validation, how
    # long after it to wait for missing signals, when to judge a rollout that never completes.
    mode: str = Field("auto", pattern="^(auto|approve|dry-run)$")
    settle_seconds: float = Field(30.0, ge=0, le=3600)
    signal_wait_seconds: float = Field(120.0, ge=0, le=3600)
    rollout_timeout_seconds: float = Field(300.0, ge=0, le=3600)
    max_attempts: int = Field(3, ge=1, le=10)
    # Blast radius: Incidents acting at once per namespace, actions per workload per hour.
    max_concurrent_incidents: int = Field(3, ge=1, le=100)
    max_actions_per_workload_per_hour: int = Field(6, ge=1, le=1000)
    # Threads the open Incidents' ticks share (a pausing Incident holds none): 100 Incidents open
    # at once all move on, never more threads than this.
    incident_workers: int = Field(16, ge=1, le=256)

    # The model (any OpenAI-compatible server). Neither a key nor a base URL: the rules plan alone.
    # The key may also come from OPENAI_API_KEY; in the chart it comes from a Secret.
    # A secret type: its repr, str and any error text that quotes the settings show asterisks.
    llm_api_key: SecretStr = SecretStr("")
    llm_base_url: str = ""  # empty: the openai client's default (api.openai.com)
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(30.0, gt=0, le=600)
    llm_max_retries: int = Field(1, ge=0, le=5)
    llm_prompt_usd_per_million: float = Field(0.0, ge=0)
    llm_completion_usd_per_million: float = Field(0.0, ge=0)
    # When the model is asked (PlannerPolicy): hybrid (a matching rule acts at once; the model when
    # none matches or a rule's plan was undone), llm (every plan) or rules (never).
    planner: PlannerPolicy = PlannerPolicy.HYBRID
    # Whether triage asks the model for its diagnosis too (hybrid and llm; the rules' otherwise).
    llm_triage: bool = True
    # Tokens (prompt + completion) one Incident may spend on the model; past them, the rules alone.
    llm_token_budget: int = Field(20000, ge=0)

    # Spans of each Incident's phases and model calls, over OTLP/HTTP (e.g. http://jaeger.observability:4318,
    # the shop's Jaeger); empty: none.
    otlp_endpoint: str = ""

    # The key that seals the records the operator writes into a status and later acts on (action
    # records, fault targets: `domain.seal`); in the chart, from a Secret. Empty: one per process.
    record_key: SecretStr = SecretStr("")

    # The operator's own metrics on /metrics (adapters/telemetry.py), served by every replica; 0: off.
    metrics_port: int = Field(9464, ge=0, le=65535)

    # Notices (AwaitingApproval, Escalated, Resolved) to a JSON webhook and/or a Slack-compatible
    # incoming webhook; in the chart both URLs come from a Secret (they carry tokens). Empty: none.
    notify_webhook_url: str = ""
    notify_slack_url: str = ""
    notify_attempts: int = Field(4, ge=1, le=10)
    notify_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # The dashboard's address as people reach it: notices link an Incident there (empty: no link).
    dashboard_url: str = ""
    # Finished Incidents (Resolved, Escalated, DryRun, Failed) are deleted this long after they
    # finished (their record stays in Events and the metrics); 0: kept for ever.
    finished_ttl_seconds: float = Field(7 * 24 * 3600.0, ge=0)
    # Log lines as text (`plain`, `full`: kopf's formats) or one JSON document per line (`json`).
    log_format: str = Field("full", pattern="^(plain|full|json)$")

    def sinks(self) -> list[Sink]:
        return [Sink(kind, url.strip()) for kind, url in (("webhook", self.notify_webhook_url),
                                                          ("slack", self.notify_slack_url)) if url.strip()]

    def thresholds(self) -> Thresholds:
        return Thresholds(error_ratio=self.error_ratio_threshold, p95_seconds=self.p95_threshold_seconds,
                          for_cycles=self.breach_cycles, cooldown_seconds=self.cooldown_seconds)

    def slo(self) -> Slo:
        return Slo(max_error_ratio=self.slo_error_ratio, max_p95_seconds=self.p95_threshold_seconds)

    def caps(self) -> Caps:
        return Caps(max_concurrent=self.max_concurrent_incidents,
                    max_actions_per_hour=self.max_actions_per_workload_per_hour)

    def llm_config(self) -> LlmConfig | None:
        """How to reach the model: a key (a cloud API), or a base URL alone (a server of our own, such
        as the cluster's llama.cpp, which needs none); neither: no model, the rules alone."""
        key = self.llm_api_key.get_secret_value() or os.environ.get("OPENAI_API_KEY", "")
        if not key and not self.llm_base_url:
            return None
        return LlmConfig(base_url=self.llm_base_url or None, api_key=SecretStr(key or "no-key"),
                         model=self.llm_model,
                         timeout_seconds=self.llm_timeout_seconds, max_retries=self.llm_max_retries,
                         prompt_usd_per_million=self.llm_prompt_usd_per_million,
                         completion_usd_per_million=self.llm_completion_usd_per_million)

    def seal_key(self) -> bytes:
        """The key of `domain.seal` (the configured one, else this process's own)."""
        return self.record_key.get_secret_value().encode() or PROCESS_KEY

    def watched(self) -> list[str]:
        return [n.strip() for n in self.watch_namespaces.split(",") if n.strip()]

    def acts_in(self, namespace: str) -> bool:
        """Whether the operator may act in `namespace`: a watched one (anywhere when none is named)."""
        watched = self.watched()
        return not watched or namespace in watched

    def allowed_target_namespaces(self) -> set[str]:
        return {n.strip() for n in self.fault_target_namespaces.split(",") if n.strip()}
