"""
`llmcassette record`: the real SDKs recorded through the proxy by their base-URL variables and
replayed in-process; a command's status and signals; the proxy on its own until it is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner, Result

import llmcassette
from llmcassette import load_cassette
from llmcassette.cli import cli
from llmcassette.proxy import RouteTable
from llmcassette.proxy._journal import Journal, journal_path
from tests.cli.test_serve import ServeProcess
from tests.servers import serve
from tests.unwritable import locked, small_disk
from tests.upstreams import EXPECTED, provider_app

# An SDK user's script. Nothing in it names a URL: each SDK reads its base URL from the
# environment (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GOOGLE_GEMINI_BASE_URL, OLLAMA_HOST).
SDK_SCRIPT = """
import json

import anthropic
import ollama
import openai
from google import genai

PROMPT = "What is the weather in Paris?"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}
TOOL = {"name": "get_weather", "description": "Weather now", "parameters": SCHEMA}
MESSAGES = [{"role": "user", "content": PROMPT}]


def openai_calls():
    kwargs = {"model": "gpt-test", "messages": MESSAGES, "tools": [{"type": "function", "function": TOOL}]}
    with openai.OpenAI(api_key="sk-test-openai", max_retries=0) as client:
        reply = client.chat.completions.create(**kwargs)
        message = reply.choices[0].message
        calls = [[c.function.name, json.loads(c.function.arguments)] for c in message.tool_calls]
        usage = [reply.usage.prompt_tokens, reply.usage.completion_tokens]
        whole = [message.content, calls, reply.choices[0].finish_reason, usage]
        text, name, args, finish = "", "", "", None
        stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            if not chunk.choices:
                usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
                continue
            delta = chunk.choices[0].delta
            text += delta.content or ""
            for call in delta.tool_calls or []:
                name += call.function.name or ""
                args += call.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
    return {"openai-json": whole, "openai-stream": [text, [[name, json.loads(args)]], finish, usage]}


def anthropic_calls():
    tool = {"name": TOOL["name"], "description": TOOL["description"], "input_schema": SCHEMA}
    with anthropic.Anthropic(api_key="sk-test-anthropic", max_retries=0) as client:
        kwargs = {"model": "claude-test", "max_tokens": 256, "tools": [tool], "messages": MESSAGES}
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    text = "".join(block.text for block in message.content if block.type == "text")
    calls = [[block.name, block.input] for block in message.content if block.type == "tool_use"]
    usage = [message.usage.input_tokens, message.usage.output_tokens]
    return {"anthropic-stream": [text, calls, message.stop_reason, usage]}


def genai_calls():
    function = genai.types.FunctionDeclaration(
        name=TOOL["name"], description=TOOL["description"], parameters_json_schema=SCHEMA
    )
    config = genai.types.GenerateContentConfig(tools=[genai.types.Tool(function_declarations=[function])])
    with genai.Client(api_key="sk-test-gemini") as client:
        stream = client.models.generate_content_stream(model="gemini-test", contents=PROMPT, config=config)
        chunks = list(stream)
    parts = [part for chunk in chunks for part in chunk.candidates[0].content.parts]
    text = "".join(part.text for part in parts if part.text is not None)
    calls = [[p.function_call.name, p.function_call.args] for p in parts if p.function_call is not None]
    last = chunks[-1]
    usage = [last.usage_metadata.prompt_token_count, last.usage_metadata.candidates_token_count]
    return {"genai-stream": [text, calls, last.candidates[0].finish_reason.value, usage]}


def ollama_calls():
    client = ollama.Client(headers={"Authorization": "Bearer sk-test-ollama"})
    tools = [{"type": "function", "function": TOOL}]
    parts = list(client.chat(model="llama-test", messages=MESSAGES, tools=tools, stream=True))
    text = "".join(part.message.content or "" for part in parts)
    calls = [[c.function.name, dict(c.function.arguments)] for p in parts for c in p.message.tool_calls or []]
    last = parts[-1]
    return {"ollama-stream": [text, calls, last.done_reason, [last.prompt_eval_count, last.eval_count]]}


def run():
    return {**openai_calls(), **anthropic_calls(), **genai_calls(), **ollama_calls()}


if __name__ == "__main__":
    print(json.dumps(run()))
"""

# A client with no SDK, quick to start: one chat request to the proxy's OpenAI route.
CHAT_SCRIPT = """
import json, os, sys, urllib.request
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    data=json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}).encode(),
    headers={"content-type": "application/json", "authorization": "Bearer sk-test-curl"},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["choices"][0]["finish_reason"])
if len(sys.argv) > 1:
    open(sys.argv[1], "w").close()
    import time; time.sleep(30)
sys.exit(3)
"""


@pytest.fixture(scope="module")
def hang_s() -> float:
    """
    How long a subprocess of these tests may run before it counts as hung: 20 times what starting
    a Python that imports the SDKs takes on this machine now (at least 60 s). The limits only
    catch a hang; a flat one failed healthy runs on a machine busy with other work.
    """
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import anthropic, google.genai, ollama, openai, llmcassette.cli"],
        check=True,
        timeout=600,
    )
    return max(60.0, 20 * (time.monotonic() - started))


def record_args(path: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "llmcassette", "record", "-o", str(path), *options]


def routes_to(upstream: str, *names: str) -> list[str]:
    return [arg for name in names for arg in ("--route", f"{name}={upstream}")]


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[str, Any]]:
    app = provider_app()
    with serve(app) as base:
        yield base, app


def refuses_connections(base_url: str) -> bool:
    address = urlsplit(base_url)
    assert address.hostname is not None and address.port is not None
    with socket.socket() as sock:
        return sock.connect_ex((address.hostname, address.port)) != 0


def test_the_sdks_are_recorded_through_their_base_url_variables_and_replay_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hang_s: float
) -> None:
    script = tmp_path / "client.py"
    script.write_text(SDK_SCRIPT)
    path = tmp_path / "sdks.yaml"
    app = provider_app()
    with serve(app) as upstream:
        done = subprocess.run(
            [
                *record_args(path, *routes_to(upstream, "openai", "anthropic", "gemini", "ollama")),
                "--",
                sys.executable,
                str(script),
            ],
            capture_output=True,
            text=True,
            timeout=hang_s,
        )
    assert done.returncode == 0, done.stderr
    live = json.loads(done.stdout)
    expected = [EXPECTED.text, [[EXPECTED.tool_name, EXPECTED.tool_args]]]
    usage = [EXPECTED.input_tokens, EXPECTED.output_tokens]
    assert live == {
        "openai-json": [*expected, "tool_calls", usage],
        "openai-stream": [*expected, "tool_calls", usage],
        "anthropic-stream": [*expected, "tool_use", usage],
        "genai-stream": [*expected, "STOP", usage],
        "ollama-stream": [*expected, "stop", usage],
    }
    assert done.stderr.endswith(f"llmcassette record: recorded 5 interactions to {path}.\n")

    # Every SDK reached the upstream through the proxy, with its real key.
    received = app.state.requests
    assert [r.path for r in received] == [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/models/gemini-test:streamGenerateContent",
        "/api/chat",
    ]
    assert all(any("sk-test" in value for value in r.headers.values()) for r in received)
    # The cassette holds the upstream's URLs, the streams' chunking, and no key.
    interactions = load_cassette(path).interactions
    assert all(i.request.uri.startswith(f"{upstream}/") for i in interactions)
    streamed = [i.response.stream for i in interactions[1:]]
    assert all(s is not None and s.chunks is not None and len(s.chunks) > 1 for s in streamed)
    assert b"sk-test" not in path.read_bytes()

    # Replay in this process, the SDKs pointed at the real upstream, which is gone.
    assert refuses_connections(upstream)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream}/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", upstream)
    monkeypatch.setenv("OLLAMA_HOST", upstream)
    run = runpy.run_path(str(script))["run"]
    with llmcassette.use_cassette(path) as cassette:
        replayed = json.loads(json.dumps(run()))
    assert replayed == live
    assert [a.interaction for a in cassette.attempts] == [0, 1, 2, 3, 4]
    assert cassette.misses == []

    # And through `llmcassette serve`: the same script, the SDKs pointed at the server's routes.
    served = ServeProcess(str(path), "--port", "0")
    try:
        env = {**os.environ, **RouteTable().environment(served.url)}
        through_serve = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=hang_s,
        )
        log = served.lines(5)
    finally:
        served.stop()
    assert through_serve.returncode == 0, through_serve.stderr
    assert json.loads(through_serve.stdout) == live
    assert [line.split(" -> ")[1][:3] for line in log] == ["200"] * 5, log


# The openai and anthropic SDKs, each with the base URL `record` exports for it.
PREFIXED_SCRIPT = """
import json

import anthropic
import openai

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
with openai.OpenAI(api_key="sk-test-openai", max_retries=0) as client:
    chat = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
with anthropic.Anthropic(api_key="sk-test-anthropic", max_retries=0) as client:
    message = client.messages.create(model="claude-test", max_tokens=64, messages=MESSAGES)
print(json.dumps([chat.choices[0].message.content, message.content[0].text]))
"""


def test_an_upstream_with_a_path_gets_each_sdks_request_at_its_path_once(
    tmp_path: Path, hang_s: float
) -> None:
    # `--upstream http://host:port/v1`, as an OpenAI client is given vLLM or LiteLLM: the OpenAI
    # SDK appends `/chat/completions` to OPENAI_BASE_URL, the Anthropic SDK `/v1/messages` to
    # ANTHROPIC_BASE_URL, and neither may reach `/v1/v1/...`.
    script = tmp_path / "client.py"
    script.write_text(PREFIXED_SCRIPT)
    path = tmp_path / "prefixed.yaml"
    app = provider_app()
    with serve(app) as upstream:
        done = subprocess.run(
            [*record_args(path, "--upstream", f"{upstream}/v1"), "--", sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=hang_s,
        )
    assert [r.path for r in app.state.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [EXPECTED.text, EXPECTED.text]
    interactions = load_cassette(path).interactions
    assert [(i.request.uri, i.response.status.code) for i in interactions] == [
        (f"{upstream}/v1/chat/completions", 200),
        (f"{upstream}/v1/messages", 200),
    ]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_the_commands_exit_status_is_kept_and_what_it_recorded_is_saved(
    tmp_path: Path, providers: tuple[str, Any]
) -> None:
    upstream, _ = providers
    path = tmp_path / "c.yaml"
    result = invoke(
        "record", "-o", str(path), "--upstream", upstream, "--", sys.executable, "-c", CHAT_SCRIPT
    )
    assert result.exit_code == 3, result.output
    assert result.stderr.endswith(f"llmcassette record: recorded 1 interaction to {path}.\n")
    (interaction,) = load_cassette(path).interactions
    assert interaction.request.uri == f"{upstream}/v1/chat/completions"
    assert b"sk-test" not in path.read_bytes()


# A client that copes with an error: it reports the status and exits 0 whatever it got.
COPING_SCRIPT = """
import json, os, sys, urllib.error, urllib.request
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    data=json.dumps({"model": sys.argv[1], "messages": [{"role": "user", "content": "hi"}]}).encode(),
    headers={"content-type": "application/json"},
)
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


def test_a_request_a_once_cassette_cannot_answer_fails_the_run(
    tmp_path: Path, providers: tuple[str, Any]
) -> None:
    upstream, _ = providers
    path = tmp_path / "c.yaml"
    run = ["--upstream", upstream, "--record-mode", "once", "--", sys.executable, "-c", COPING_SCRIPT]
    assert invoke("record", "-o", str(path), *run, "gpt-test").exit_code == 0
    recorded = path.read_bytes()
    result = invoke("record", "-o", str(path), *run, "gpt-other")
    assert result.exit_code == 1
    assert result.stderr.startswith("llmcassette record: recording to ")
    assert (
        f"llmcassette: no recorded interaction matches POST {upstream}/v1/chat/completions" in result.stderr
    )
    assert path.read_bytes() == recorded


def test_no_scrub_stores_the_key_as_sent(tmp_path: Path, providers: tuple[str, Any]) -> None:
    upstream, _ = providers
    path = tmp_path / "c.yaml"
    args = ["--upstream", upstream, "--no-scrub", "--", sys.executable, "-c", CHAT_SCRIPT]
    assert invoke("record", "-o", str(path), *args).exit_code == 3
    assert b"Bearer sk-test-curl" in path.read_bytes()


def test_a_command_that_cannot_be_found_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    result = invoke(
        "record", "-o", str(path), "--upstream", "http://127.0.0.1:9", "--", "no-such-command-xyz"
    )
    assert result.exit_code == 127
    assert result.stderr.endswith(
        "llmcassette: cannot run 'no-such-command-xyz': no such file or command.\n"
    ), result.stderr
    assert "Traceback" not in result.output
    assert not path.exists()


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        pytest.param(
            ["--route", "openai"], "invalid value for '--route': route 'openai' is not NAME=URL", id="route"
        ),
        pytest.param(
            ["--upstream", "ftp://x"], "invalid value for '--upstream': --upstream 'ftp://x'", id="upstream"
        ),
        pytest.param(["--record-mode", "none"], "invalid value for '--record-mode'", id="mode"),
        pytest.param(["--port", "70000"], "invalid value for '--port'", id="port"),
    ],
)
def test_options_used_wrongly_are_one_line_usage_errors(tmp_path: Path, args: list[str], starts: str) -> None:
    result = invoke("record", "-o", str(tmp_path / "c.yaml"), *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"llmcassette: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_without_output_the_usage_error_names_the_option() -> None:
    result = invoke("record", "--", "true")
    assert result.exit_code == 2
    assert result.stderr.startswith("llmcassette: missing option '-o' / '--output'."), result.stderr


def _lines(stream: Any) -> queue.Queue[str]:
    """The lines of a pipe, read by a thread, so that the test can wait for one with a timeout."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.parametrize(
    "stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"]
)
def test_without_a_command_it_prints_the_exports_and_saves_when_stopped(
    tmp_path: Path, providers: tuple[str, Any], stop: signal.Signals, hang_s: float
) -> None:
    upstream, _ = providers
    path = tmp_path / "cassettes" / "manual.yaml"
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        record_args(path, "--upstream", upstream, "--port", str(port), "--verbose"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout = _lines(process.stdout)
        exports = {}
        while "OPENAI_BASE_URL" not in exports:
            name, _, value = stdout.get(timeout=hang_s).strip().removeprefix("export ").partition("=")
            exports[name] = value
        proxy = exports["LLMCASSETTE_PROXY_URL"]
        assert proxy == f"http://127.0.0.1:{port}"
        assert exports["OPENAI_BASE_URL"] == f"{proxy}/v1"
        chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(timeout=10) as client:
            assert client.post(f"{proxy}/v1/chat/completions", json=chat).status_code == 200
            with client.stream(
                "POST", f"{proxy}/v1/chat/completions", json={**chat, "stream": True}
            ) as response:
                assert b"[DONE]" in b"".join(response.iter_raw())
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=hang_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"through {proxy} (record mode 'new_episodes')" in stderr
    assert f"POST {upstream}/v1/chat/completions -> 200, recorded, " in stderr
    assert stderr.endswith(f"llmcassette record: recorded 2 interactions to {path}.\n")
    interactions = load_cassette(path).interactions
    assert [i.request.uri for i in interactions] == [f"{upstream}/v1/chat/completions"] * 2
    assert os.listdir(path.parent) == ["manual.yaml"]  # written atomically: no temporary file left


def test_a_stop_signal_reaches_the_command_and_what_it_recorded_is_saved(
    tmp_path: Path, providers: tuple[str, Any], hang_s: float
) -> None:
    upstream, _ = providers
    path = tmp_path / "c.yaml"
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [*record_args(path, "--upstream", upstream), "--", sys.executable, "-c", CHAT_SCRIPT, str(ready)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + hang_s
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=hang_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # The command died of the forwarded SIGTERM, not at the end of its 30 s sleep (then it would
    # have exited 3): the exit status says so, whatever the clock on a busy machine.
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stdout == "tool_calls\n"
    assert stderr.endswith(f"llmcassette record: recorded 1 interaction to {path}.\n")
    assert len(load_cassette(path).interactions) == 1


def _journal_of(path: Path, interactions: list[Any], cut_off: str = "") -> None:
    """A journal beside ``path``, as a session killed before it saved would leave it."""
    journal = Journal(path)
    for interaction in interactions:
        journal.append(interaction)
    journal.close()
    with journal_path(path).open("a") as handle:
        handle.write(cut_off)


@pytest.mark.parametrize("count", [1, 2])
def test_after_a_recovery_the_stop_line_says_what_the_cassette_holds(
    tmp_path: Path, providers: tuple[str, Any], count: int
) -> None:
    upstream, _ = providers
    source = tmp_path / "source.yaml"
    invoke("record", "-o", str(source), "--upstream", upstream, "--", sys.executable, "-c", CHAT_SCRIPT)
    path = tmp_path / "c.yaml"
    _journal_of(path, load_cassette(source).interactions * count)
    result = invoke("record", "-o", str(path), "--upstream", upstream, "--", "true")
    assert result.exit_code == 0, result.output
    recovered, recording, summary = result.stderr.splitlines()
    noun, verb = ("1 interaction", "is") if count == 1 else ("2 interactions", "are")
    assert recovered == (
        f"llmcassette: an earlier record session on {str(path)!r} ended without saving; {noun} from "
        f"its journal {str(journal_path(path))!r} {verb} now in the cassette."
    )
    assert recording.startswith(f"llmcassette record: recording to {path} through http://127.0.0.1:")
    assert summary == (
        f"llmcassette record: nothing new was recorded; {path} keeps the {noun} recovered from the journal."
    )
    assert len(load_cassette(path).interactions) == count


def test_a_rewrite_after_a_recovery_says_the_recovered_interactions_were_replaced(
    tmp_path: Path, providers: tuple[str, Any]
) -> None:
    upstream, _ = providers
    source = tmp_path / "source.yaml"
    invoke("record", "-o", str(source), "--upstream", upstream, "--", sys.executable, "-c", CHAT_SCRIPT)
    path = tmp_path / "c.yaml"
    _journal_of(path, load_cassette(source).interactions * 2)
    args = ["--upstream", upstream, "--record-mode", "rewrite", "--", sys.executable, "-c", CHAT_SCRIPT]
    result = invoke("record", "-o", str(path), *args)
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines()[-1] == (
        f"llmcassette record: recorded 1 interaction to {path}, which replaces all it held (record "
        "mode 'rewrite'), the 2 interactions recovered from the journal included."
    )
    assert len(load_cassette(path).interactions) == 1


def test_a_journal_with_nothing_whole_leaves_the_cassette_unwritten_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    _journal_of(path, [], cut_off='{"version": 1, "interactions": [{"requ')
    result = invoke("record", "-o", str(path), "--upstream", "http://127.0.0.1:9", "--", "true")
    assert result.exit_code == 0, result.output
    recovered, _, summary = result.stderr.splitlines()
    assert recovered == (
        f"llmcassette: an earlier record session on {str(path)!r} ended without saving; its journal "
        f"{str(journal_path(path))!r} held no whole interaction (one was being written when the "
        "session was killed, and is lost), and is deleted."
    )
    assert summary == f"llmcassette record: nothing was recorded; {path} was not written."
    assert not path.exists() and not journal_path(path).exists()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody has reaped yet is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


# A command that says who it is, then would run for a minute.
# Sleeps for longer than any test waits: alive at the end of a wait, it was not ended.
PID_SCRIPT = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(3600)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_record_session_killed_outright_takes_its_command_with_it(tmp_path: Path, hang_s: float) -> None:
    pid_file = tmp_path / "pid"
    process = subprocess.Popen(
        [
            *record_args(tmp_path / "c.yaml", "--upstream", "http://127.0.0.1:9"),
            "--",
            sys.executable,
            "-c",
            PID_SCRIPT,
            str(pid_file),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    child = None
    try:
        deadline = time.monotonic() + hang_s
        while not pid_file.exists() or not pid_file.read_text():
            assert process.poll() is None and time.monotonic() < deadline, "the command did not start"
            time.sleep(0.02)
        child = int(pid_file.read_text())
        assert _running(child)
        process.kill()  # SIGKILL: llmcassette runs no handler at all
        process.wait(timeout=hang_s)
        deadline = time.monotonic() + hang_s
        while _running(child):
            assert time.monotonic() < deadline, "the command outlived the proxy"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("where", ["under-a-file", "locked-folder", "under-a-locked-folder"])
def test_a_cassette_that_cannot_be_written_is_refused_before_the_command_starts(
    tmp_path: Path, where: str
) -> None:
    folder = tmp_path / "cassettes"
    if where == "under-a-file":
        folder.write_text("a file")
        path, refusing = folder / "c.yaml", f"{str(folder)!r} is a file, not a folder"
    else:
        folder.mkdir()
        path = folder / ("c.yaml" if where == "locked-folder" else "sub/c.yaml")
        refusing = f"no file can be created in {str(folder)!r} ("
    ran = tmp_path / "ran"
    with contextlib.ExitStack() as stack:
        if where != "under-a-file":
            stack.enter_context(locked(folder))
        result = invoke(
            "record", "-o", str(path), "--upstream", "http://127.0.0.1:9", "--", "touch", str(ran)
        )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"llmcassette: cannot record to {str(path)!r}: {refusing}"), result.stderr
    assert result.stderr.endswith(
        ". The cassette and its journal are written in its folder: choose a path you can write to.\n"
    )
    assert result.stderr.count("\n") == 1
    assert not ran.exists()  # the command never started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cassettes"]


# A client that makes a request, fills the disk once the journal holds it, then makes two more
# (each too big for the room left in the pages the journal already has).
FILLING_SCRIPT = """
import errno, os, sys, time, urllib.request

def ask(n):
    url = f"{os.environ['LLMCASSETTE_PROXY_URL']}/json?n={n}"
    body = ('{"pad": "%s"}' % ("x" * 8192)).encode()
    urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10).read()

ask(1)
deadline = time.monotonic() + 10
while not open(sys.argv[1], "rb").read().endswith(b"\\n"):
    assert time.monotonic() < deadline, "the journal did not get the first interaction"
    time.sleep(0.01)
with open(os.path.join(os.path.dirname(sys.argv[1]), "filler"), "ab", buffering=0) as filler:
    try:
        while True:
            filler.write(b"x" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
ask(2)
ask(3)
print("answered 3")
"""


def test_a_full_disk_is_reported_at_once_and_the_recording_is_saved_elsewhere(
    tmp_path: Path, upstream: str, hang_s: float
) -> None:
    disk, temporary = tmp_path / "disk", tmp_path / "temporary"
    temporary.mkdir()
    path = disk / "c.yaml"
    with small_disk(disk):
        done = subprocess.run(
            [
                *record_args(path, "--upstream", upstream),
                "--",
                sys.executable,
                "-c",
                FILLING_SCRIPT,
                str(journal_path(path)),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "TMPDIR": str(temporary)},
            timeout=hang_s,
        )
        left = sorted(p.name for p in disk.iterdir())
    assert left == ["filler"], (left, done.stderr)  # the journal is gone with the copy
    assert done.stdout == "answered 3\n", done.stderr  # the session went on proxying
    assert done.returncode == 1
    (copy,) = temporary.glob("llmcassette-unsaved-*/c.yaml")
    _, warning, error = done.stderr.splitlines()

    assert warning == (
        f"llmcassette: cannot write the journal {str(journal_path(path))!r} (No space left on device). "
        "Recording goes on: what is recorded is kept in memory and saved when record stops, but a "
        "session killed before then loses what the journal does not hold."
    )
    assert error == (
        f"llmcassette: cannot save the cassette {str(path)!r} (No space left on device); it is saved as "
        f"{str(copy)!r} instead, with the 3 interactions recorded in this session. Move it to "
        f"{str(path)!r} once that can be written."
    )
    assert [i.request.uri for i in load_cassette(copy).interactions] == [
        f"{upstream}/json?n={n}" for n in (1, 2, 3)
    ]
