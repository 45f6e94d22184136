"""The language-model adapter: one structured-output chat call to any OpenAI-compatible server
(OpenAI, vLLM, Ollama, LocalAI, llama.cpp's server) through the `openai` client. It returns the
parsed answer with the tokens it cost, or raises `ModelCallFailed` with the reason and the tokens
the call cost anyway; it knows nothing of incidents or plans."""
from __future__ import annotations

from typing import Any, TypeVar

import openai
from pydantic import BaseModel, ValidationError

from ..domain.policy import LlmConfig
from ..domain.ports import Answer, ModelCallFailed, Tokens

T = TypeVar("T", bound=BaseModel)


class ChatClient:
    """`domain.ports.ChatModel` through the `openai` client."""

    def __init__(self, base_url: str | None, api_key: str, timeout_seconds: float, max_retries: int) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_seconds,
                                    max_retries=max_retries)

    def structured(self, model: str, messages: list[dict[str, Any]], schema: type[T], max_tokens: int) -> Answer[T]:
        """The model's answer as an instance of `schema` (asked for as a strict JSON schema). A timeout,
        a lost connection or a server error is retried by the client (`max_retries`, one by default);
        an answer that does not parse is not (the same prompt would get the same answer)."""
        tried = Tokens(calls=1 + self.max_retries)
        try:
            raw = self.client.chat.completions.with_raw_response.parse(
                model=model, messages=messages,  # type: ignore[arg-type]
                response_format=schema, temperature=0, max_completion_tokens=max_tokens)
        except openai.APITimeoutError as exc:
            raise ModelCallFailed(f"the model did not answer within {self.timeout_seconds:.0f}s "
                                  f"({tried.calls} tries)", tried) from exc
        except openai.APIError as exc:
            status = getattr(exc, "status_code", 500)
            if status < 500 and status not in (408, 409, 429):  # the client does not retry these
                tried = Tokens(calls=1)
            raise ModelCallFailed(f"the model's server failed: {type(exc).__name__}: {str(exc)[:300]}", tried) from exc
        calls = 1 + int(getattr(raw, "retries_taken", 0) or 0)
        try:
            body = raw.http_response.json()
            u = body.get("usage") or {}
            tokens = Tokens(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0), calls)
        except (ValueError, TypeError, AttributeError):
            tokens = Tokens(calls=calls)
        try:
            completion = raw.parse()
            message = completion.choices[0].message
        except (ValidationError, ValueError, IndexError, openai.OpenAIError) as exc:
            raise ModelCallFailed(f"the answer does not follow its schema: {str(exc)[:400]}", tokens) from exc
        if message.refusal:
            raise ModelCallFailed(f"the model refused: {message.refusal[:300]}", tokens)
        if message.parsed is None:
            raise ModelCallFailed("the answer holds no plan", tokens)
        return Answer(message.parsed, tokens)


def chat_client(config: LlmConfig) -> ChatClient:
    """The client for the model `config` names."""
    return ChatClient(config.base_url, config.api_key.get_secret_value(), config.timeout_seconds, config.max_retries)
