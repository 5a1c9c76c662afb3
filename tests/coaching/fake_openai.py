"""A scripted OpenAI-compatible server for the coach tests (pytest-httpserver: real HTTP on localhost).

`/v1/chat/completions` answers from a script, one entry per request; `/v1/embeddings` answers with
the offline (WordLlama) embedder's vectors. Every request body is kept so tests can check what left the CRM.
"""

from __future__ import annotations

import itertools
import json
import time

from werkzeug import Request, Response

from activities.embeddings import embed_texts_with

_ids = itertools.count(1)


def tool_call(name: str, arguments: dict | str, call_id: str | None = None) -> dict:
    return {
        "id": call_id or f"call_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
    }


def completion(*, content: str | None = None, tool_calls: list[dict] | None = None, model: str = "fake-gpt") -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


class Status:
    def __init__(self, code: int, headers: dict | None = None) -> None:
        self.code, self.headers = code, headers or {}


class Sleep:
    def __init__(self, seconds: float, then: dict | None = None) -> None:
        self.seconds, self.then = seconds, then


class FakeOpenAI:
    def __init__(self, httpserver) -> None:
        self.script: list = []
        self.repeat_last = False
        self.chat_requests: list[dict] = []
        self.embedding_requests: list[dict] = []
        self.raw_bodies: list[str] = []
        httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(self._chat)
        httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(self._embeddings)

    def _chat(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        self.raw_bodies.append(body)
        self.chat_requests.append(json.loads(body))
        if not self.script:
            return Response("script exhausted", status=599)
        step = self.script[0] if (self.repeat_last and len(self.script) == 1) else self.script.pop(0)
        if isinstance(step, Status):
            payload = {"error": {"message": f"scripted {step.code}", "type": "server_error"}}
            return Response(json.dumps(payload), status=step.code, headers=step.headers, mimetype="application/json")
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            step = step.then or completion(content="too late")
        return Response(json.dumps(step), mimetype="application/json")

    def _embeddings(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        self.raw_bodies.append(body)
        data = json.loads(body)
        self.embedding_requests.append(data)
        texts = data["input"] if isinstance(data["input"], list) else [data["input"]]
        # The offline default's vectors: rows embedded before a test switched to this server share its space.
        vectors = embed_texts_with("wordllama", texts)
        payload = {
            "object": "list",
            "model": data["model"],
            "data": [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)],
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        }
        return Response(json.dumps(payload), mimetype="application/json")

    def all_sent_text(self) -> str:
        return "\n".join(self.raw_bodies)
