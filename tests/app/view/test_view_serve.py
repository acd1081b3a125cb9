"""GET /view on `ponder serve`: the last solved requests with their reasoning trees, behind the
API key (Bearer, or the key as a browser's Basic password). First in process on the scripted
backend; then a real `ponder serve` in front of the session's vLLM server, opened in chromium."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import openai
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from ponder.app.serve.server import ServeConfig, make_app
from ponder.backends.scripted import ScriptedBackend

from ...servers import served

KEY = "view-key"
PONDER = str(Path(sys.executable).parent / "ponder")


def page_data(page: str) -> dict:
    return json.loads(re.search(r'<script id="ponder-data" type="application/json">(.*?)</script>', page, re.S).group(1))


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()


async def test_view_shows_the_last_n_requests_behind_the_key():
    backend = ScriptedBackend(lambda call: f"The answer is \\boxed{{{call.index + 1}}}.")
    server = TestServer(make_app(backend, ServeConfig(api_key=KEY, view_requests=2)))
    await server.start_server()
    try:
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0)
        for q in ("first?", "second?", "third?"):
            await client.chat.completions.create(model="best_of_n", messages=[{"role": "user", "content": q}], extra_body={"ponder": {"n": 3}})
        streamed = await client.chat.completions.create(model="best_of_n", messages=[{"role": "user", "content": "streamed?"}], stream=True)
        async for _ in streamed:
            pass
        async with ClientSession() as http:
            url = str(server.make_url("/view"))
            async with http.get(url) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="ponder serve"'
                assert (await r.json())["error"]["code"] == "invalid_api_key"
            async with http.get(url, headers={"Authorization": basic("wrong")}) as r:
                assert r.status == 401
            async with http.get(url, headers={"Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 200 and r.content_type == "text/html"
                by_bearer = await r.text()
            async with http.get(url, headers={"Authorization": basic(KEY)}) as r:
                assert r.status == 200
                by_basic = await r.text()
        assert page_data(by_bearer)["runs"][0]["rows"] == page_data(by_basic)["runs"][0]["rows"]
        rows = page_data(by_bearer)["runs"][0]["rows"]
        assert [r["question"] for r in rows] == ["streamed?", "third?"]  # the last two, newest first
        assert rows[1]["answer"] == "1" and rows[1]["generated"] > 0 and all(r["chunk"] is not None for r in rows)
    finally:
        await server.close()


async def test_no_requests_kept_with_view_requests_0():
    server = TestServer(make_app(ScriptedBackend(["\\boxed{1}"]), ServeConfig(view_requests=0)))
    await server.start_server()
    try:
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="none", max_retries=0)
        await client.chat.completions.create(model="best_of_n", messages=[{"role": "user", "content": "q"}])
        async with ClientSession() as http, http.get(str(server.make_url("/view"))) as r:
            assert r.status == 200 and page_data(await r.text())["runs"][0]["rows"] == []
    finally:
        await server.close()


@pytest.mark.browser
def test_view_on_a_real_server_in_the_browser(vllm_server, browser, tmp_path):
    command = lambda port: [PONDER, "serve", "--port", str(port), "--endpoint", vllm_server[0], "--api-key", KEY, "-v"]  # noqa: E731
    with served(command, tmp_path / "serve.log", timeout=120) as (url, _):
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=120)
        reply = client.chat.completions.create(model="best_of_n", messages=[{"role": "user", "content": "What is 2 + 2?"}],
                                               max_tokens=24, seed=3, extra_body={"ponder": {"n": 3}})
        refused = browser.new_context()  # no key: a 401 asking for Basic credentials
        answer = refused.request.get(url.replace("/v1", "/view"))
        assert answer.status == 401 and answer.headers["www-authenticate"].startswith("Basic")
        refused.close()
        context = browser.new_context(http_credentials={"username": "ponder", "password": KEY})
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        assert page.goto(url.replace("/v1", "/view")).status == 200
        page.wait_for_selector("html[data-ready='1']")
        page.click("#problem-table tbody tr")
        page.wait_for_selector("#trees[data-ready]:not([data-ready=''])")
        assert page.locator("[data-node-id]").count() == 4  # the prompt and the 3 samples
        assert page.locator("#trees .node.chosen").count() == 2  # the prompt and the chosen sample
        assert reply.model_extra["ponder"]["answer"] in page.inner_text(".tree-col .facts")
        page.locator("#trees .node.chosen").nth(1).click()
        assert page.locator(".detail pre").inner_text().strip() in reply.choices[0].message.content
        page.screenshot(path=tmp_path / "serve-view.png", full_page=True)
        assert errors == []
        context.close()
