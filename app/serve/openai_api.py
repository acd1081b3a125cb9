"""The OpenAI wire format `ponder serve` speaks: requests checked into frozen values, errors
in OpenAI's shape, and the response and chunk bodies.

Standard fields ponder honours map onto the strategy; standard fields it cannot honour are
rejected when set to something that would change the answer (tools, logprobs, penalties) and
accepted when they are only bookkeeping (user, metadata, store). Unknown fields are rejected,
as OpenAI does, except the extra `ponder` (strategy config) and `scorer` fields.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

ROLES = ("system", "developer", "user", "assistant")
# accepted and ignored: they do not change what the model is asked or how it samples
BOOKKEEPING = ("user", "metadata", "store", "service_tier", "parallel_tool_calls", "stream_options", "prompt_cache_key", "safety_identifier")
# standard fields ponder cannot honour: accepted only at the value that means "off"
UNSUPPORTED = {
    "frequency_penalty": (0, 0.0, None), "presence_penalty": (0, 0.0, None), "logit_bias": (None,),
    "logprobs": (False, None), "top_logprobs": (None, 0), "tools": (None,), "tool_choice": (None, "none", "auto"),
    "functions": (None,), "function_call": (None, "none", "auto"), "response_format": (None,), "audio": (None,),
    "modalities": (None,), "prediction": (None,), "web_search_options": (None,),
    "echo": (False, None), "best_of": (None, 1), "suffix": (None,),
}
SAMPLING = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n", "stream")
EXTRAS = ("ponder", "scorer")
THINKING = ("max_thinking_tokens", "min_thinking_tokens", "reasoning_effort")  # budget forcing (app/serve/reasoning.py)
EFFORT_LEVELS = ("low", "medium", "high")


class ApiError(Exception):
    """A request the server refuses; becomes an OpenAI-shaped JSON error body."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error", code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class ApiRequest:
    """One chat or text completion request, checked. `messages` is empty for text completions."""

    model: str
    messages: tuple[Message, ...]
    prompt: str | None
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]
    seed: int | None
    n: int
    stream: bool
    include_usage: bool
    ponder: Mapping[str, Any]
    scorer: str | None
    min_thinking_tokens: int | None = None
    max_thinking_tokens: int | None = None
    reasoning_effort: str | None = None  # low | medium | high

    @property
    def question(self) -> str:
        """The text the answer is graded against and scorers read: the last user turn, or the prompt."""
        if self.prompt is not None:
            return self.prompt
        return next(m.content for m in reversed(self.messages) if m.role == "user")


def _number(body: Mapping[str, Any], name: str, kind: type, low: float | None = None, high: float | None = None) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ApiError(400, f"{name}: expected {'a number' if kind is float else 'an integer'}, got {value!r}", name)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ApiError(400, f"{name}: {value} is outside [{low}, {high if high is not None else 'inf'}]", name)
    return kind(value)


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ApiError(400, f"{where}: only text content parts are supported, got {str(part)[:80]}", where)
            parts.append(part["text"])
        return "".join(parts)
    raise ApiError(400, f"{where}: expected a string or a list of text parts", where)


def _messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "messages: expected a non-empty list of {role, content}", "messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(400, f"{where}.role: expected one of {', '.join(ROLES)}", f"{where}.role")
        if m.get("tool_calls") or m.get("function_call"):
            raise ApiError(400, f"{where}: tool calls are not supported", where)
        role = "system" if m["role"] == "developer" else m["role"]
        out.append(Message(role, _text(m.get("content"), f"{where}.content")))
    if not any(m.role == "user" and m.content.strip() for m in out):
        raise ApiError(400, "messages: no user message with text content", "messages")
    return tuple(out)


def parse_request(body: Any, chat: bool, default_model: str) -> ApiRequest:
    """A request body checked field by field; the first problem is one ApiError naming the field."""
    if not isinstance(body, dict):
        raise ApiError(400, "body: expected a JSON object")
    main = "messages" if chat else "prompt"
    known = {"model", main, *SAMPLING, *BOOKKEEPING, *UNSUPPORTED, *EXTRAS, *THINKING}
    for name in body:
        if name not in known:
            raise ApiError(400, f"Unrecognized request argument supplied: {name}", name)
    for name, off in UNSUPPORTED.items():
        if name in body and body[name] not in off and body[name] != [] and body[name] != {}:
            raise ApiError(400, f"{name}: not supported by ponder serve (got {str(body[name])[:60]})", name, code="unsupported_parameter")
    if chat:
        messages, prompt = _messages(body.get("messages")), None
    else:
        raw = body.get("prompt")
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
            raw = raw[0]
        if not isinstance(raw, str) or not raw.strip():
            raise ApiError(400, "prompt: expected a non-empty string (one prompt per request)", "prompt")
        messages, prompt = (), raw
    cap = _number(body, "max_completion_tokens", int, 1)
    cap = cap if cap is not None else _number(body, "max_tokens", int, 1)
    stop = body.get("stop")
    stop = (stop,) if isinstance(stop, str) else stop
    if stop is not None and (not isinstance(stop, (list, tuple)) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop)):
        raise ApiError(400, "stop: expected a string or a list of up to 4 non-empty strings", "stop")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise ApiError(400, f"stream: expected a boolean, got {stream!r}", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "stream_options: expected an object", "stream_options")
    ponder = body.get("ponder") or {}
    if not isinstance(ponder, dict):
        raise ApiError(400, "ponder: expected an object of strategy fields", "ponder")
    scorer = body.get("scorer")
    if scorer is not None and not isinstance(scorer, str):
        raise ApiError(400, "scorer: expected a scorer name", "scorer")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORT_LEVELS:
        raise ApiError(400, f"reasoning_effort: expected one of {', '.join(EFFORT_LEVELS)}, got {str(effort)[:40]!r}", "reasoning_effort")
    lo, hi = _number(body, "min_thinking_tokens", int, 1), _number(body, "max_thinking_tokens", int, 1)
    if lo is not None and hi is not None and lo > hi:
        raise ApiError(400, f"min_thinking_tokens: {lo} is above max_thinking_tokens ({hi})", "min_thinking_tokens")
    model = body.get("model") or default_model
    if not isinstance(model, str):
        raise ApiError(400, "model: expected a strategy name", "model")
    return ApiRequest(
        model=model, messages=messages, prompt=prompt, max_tokens=cap,
        temperature=_number(body, "temperature", float, 0, 2), top_p=_number(body, "top_p", float, 0, 1),
        stop=tuple(stop or ()), seed=_number(body, "seed", int), n=_number(body, "n", int, 1, 128) or 1,
        stream=stream, include_usage=bool(options.get("include_usage")), ponder=dict(ponder), scorer=scorer,
        min_thinking_tokens=lo, max_thinking_tokens=hi, reasoning_effort=effort,
    )


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str  # stop | length
    answer: str
    tokens: int  # generated tokens of this choice's trajectory
    reasoning: str | None = None  # the thinking, where the model has a thinking block (`text` is the answer then)


def new_id(chat: bool) -> str:
    return f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"


def usage(ledger: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": ledger.prompt_tokens, "completion_tokens": ledger.generated_tokens,
        "total_tokens": ledger.prompt_tokens + ledger.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": ledger.cached_tokens},
    }


def response(rid: str, chat: bool, model: str, choices: Sequence[Choice], ledger: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
    if chat:
        items = [{"index": i, "message": {"role": "assistant", "content": c.text, **({} if c.reasoning is None else {"reasoning_content": c.reasoning})},
                  "logprobs": None, "finish_reason": c.finish_reason} for i, c in enumerate(choices)]
    else:
        items = [{"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason} for i, c in enumerate(choices)]
    return {
        "id": rid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()), "model": model,
        "choices": items, "usage": usage(ledger), "ponder": dict(extra),
    }


def chunk(rid: str, chat: bool, model: str, index: int | None, text: str | None = None, finish: str | None = None,
          role: bool = False, ponder: Mapping[str, Any] | None = None, ledger: Any = None, reasoning: str | None = None) -> dict[str, Any]:
    """One streamed chunk: a piece of choice `index`'s text, its finish, a progress event in
    `ponder`, or (index None) the closing usage chunk."""
    body: dict[str, Any] = {
        "id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": int(time.time()), "model": model,
    }
    if index is None:
        body["choices"] = []
    elif chat:
        delta: dict[str, Any] = {"role": "assistant"} if role else {}
        if text is not None:
            delta["content"] = text
        if reasoning is not None:
            delta["reasoning_content"] = reasoning
        body["choices"] = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]
    else:
        body["choices"] = [{"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}]
    if ledger is not None:
        body["usage"] = usage(ledger)
    if ponder is not None:
        body["ponder"] = dict(ponder)
    return body
