"""The one stand-in the tests allow: an OpenAI-compatible chat completions server on 127.0.0.1
that answers from a script instead of a paid model. The product still talks to it through the
real `openai` client, over HTTP, with its structured-output request.

`answer` is a function of the request (the parsed JSON body) returning a `Reply`: the message
content (a JSON plan, or anything else), a delay before answering, an HTTP status, a refusal."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    content: str | None = None
    delay: float = 0.0
    status: int = 200
    refusal: str | None = None


def plan_reply(actions: list[dict], root_cause: str = "the evidence points here", confidence: float = 0.8) -> Reply:
    full = [{"type": a["type"], "target": {"namespace": None, **a["target"]},
             "replicas": a.get("replicas"), "revision": a.get("revision"),
             "data": [{"key": k, "value": v} for k, v in a["data"].items()] if a.get("data") else None,
             "reason": a.get("reason", "because of the evidence")}
            for a in actions]
    return Reply(json.dumps({"summary": "what the model saw", "root_cause": root_cause, "confidence": confidence,
                             "expected_effect": "the service recovers", "actions": full}))


def user_message(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def evidence_of(request: dict) -> dict:
    """The evidence document the operator sent (inside <evidence> tags of the user message)."""
    return json.loads(re.search(r"<evidence>\n(.*)\n</evidence>", user_message(request), re.DOTALL).group(1))


def tried_of(request: dict) -> str:
    """What the planning task lists as tried and undone ("nothing" when nothing was)."""
    return re.search(r"Tried and undone: (.*)\.\n", user_message(request)).group(1)


def task_of(request: dict) -> str:
    """The task the request asks for: "diagnose" or "plan"."""
    return re.search(r'Task: "(\w+)"', user_message(request)).group(1)


def diagnosis_reply(kind: str, name: str, summary: str = "the gateway config is broken",
                    evidence: list[str] | None = None) -> Reply:
    return Reply(json.dumps({"summary": summary, "root_cause": "a bad change", "confidence": 0.7,
                             "suspect": {"kind": kind, "name": name},
                             "evidence": evidence if evidence is not None else ["a fact"]}))


class FakeLlm:
    def __init__(self, answer: Callable[[dict], Reply]) -> None:
        self.answer = answer
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                reply = fake.answer(body)
                time.sleep(reply.delay)
                if reply.status != 200:
                    payload = {"error": {"message": "scripted failure", "type": "server_error", "code": None}}
                else:
                    prompt = sum(len(m.get("content") or "") for m in body.get("messages", [])) // 4
                    completion = len(reply.content or reply.refusal or "") // 4
                    payload = {"id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                               "created": int(time.time()), "model": body.get("model", ""),
                               "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                            "message": {"role": "assistant", "content": reply.content,
                                                        "refusal": reply.refusal}}],
                               "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                         "total_tokens": prompt + completion}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @contextmanager
    def running(self) -> Iterator[FakeLlm]:
        t = threading.Thread(target=self.server.serve_forever, daemon=True)
        t.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            t.join()
