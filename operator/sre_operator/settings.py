"""The operator's settings, from the environment (`SRE_OPERATOR_*`)."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SRE_OPERATOR_")

    # Namespaces a FaultScenario may target besides its own (comma-separated; empty: its own only).
    fault_target_namespaces: str = ""
    # How often an injected scenario checks whether its duration is over.
    revert_check_seconds: float = Field(2.0, gt=0, le=60)

    def allowed_target_namespaces(self) -> set[str]:
        return {n.strip() for n in self.fault_target_namespaces.split(",") if n.strip()}
