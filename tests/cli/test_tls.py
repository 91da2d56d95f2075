"""
``record`` and ``serve`` listening with TLS (``--tls-cert``/``--tls-key``), as separate processes:
google-genai's Live client, which dials ``wss://`` whenever it has an API key, recorded through
``record`` from the local Live upstream (itself TLS, trusted by ``record`` through ``SSL_CERT_FILE``),
replayed by ``serve`` with the upstream gone, and run under the WebSocket fault set chosen by the
handshake's ``X-Llmcassette-Fault`` header (genai's ``http_options.headers``) or by ``--fault``;
plain HTTP over https; and the options used wrongly.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from click.testing import CliRunner, Result

from llmcassette._matrix import WEBSOCKET_FAULTS
from llmcassette.cli import cli
from llmcassette.proxy import Recorder, RouteTable
from tests.cli.test_serve import ServeProcess
from tests.sdk_faults._realtime import (
    GEMINI,
    HANG_WAIT_S,
    STALL_WAIT_S,
    Check,
    answered,
    live_conversation,
    refused,
)
from tests.servers import serve, stream_app
from tests.ws.live_upstream import EXPECTED, live_upstream

MODEL_PATH = "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent"


@dataclass(frozen=True)
class Tls:
    """A certificate authority's PEM, and a certificate for 127.0.0.1 it issued, as files and contexts."""

    ca: Path
    cert: Path
    key: Path
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    ca, cert, key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    authority.cert_pem.write_to_path(str(ca))
    for n, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(cert), append=n > 0)
    issued.private_key_pem.write_to_path(str(key))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return Tls(ca, cert, key, server, client)


def tls_args(tls: Tls) -> list[str]:
    return ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]


@pytest.fixture(scope="module")
def recorded(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("live") / "live.yaml"
    # `record` verifies the upstream's certificate as OpenSSL does by default: SSL_CERT_FILE names
    # the authority to trust.
    env = {**os.environ, "SSL_CERT_FILE": str(tls.ca)}
    with live_upstream(tls=tls.server) as upstream:
        process = ServeProcess(
            "-o", str(path), "--upstream", upstream.http_url, *tls_args(tls), command="record", env=env
        )
        try:
            assert process.url.startswith("https://127.0.0.1:")
            outcome = asyncio.run(live_conversation(process.url, tls.client))
        finally:
            said = process.stop()
        assert process.process.returncode == 0, said
        answered(outcome, EXPECTED)
        assert [session.path for session in upstream.sessions] == [MODEL_PATH]
    assert "recorded 1 interaction" in said
    return path


@pytest.fixture(scope="module")
def served(recorded: Path, tls: Tls) -> Iterator[ServeProcess]:
    # The upstream is gone: every session below comes from the recording.
    process = ServeProcess(str(recorded), *tls_args(tls))
    try:
        yield process
    finally:
        process.stop()


def test_genai_live_recorded_through_record_replays_through_serve_offline(
    served: ServeProcess, tls: Tls
) -> None:
    assert served.url.startswith("https://127.0.0.1:")
    outcome = asyncio.run(live_conversation(served.url, tls.client))
    answered(outcome, EXPECTED)
    assert outcome.events[-1] == "server_content"
    (line,) = served.lines(1)
    assert line.startswith(f"WS {MODEL_PATH} -> 101, from live.yaml, 2 client and ")


# A recording from 127.0.0.1 is no provider's: a refused handshake carries the generic error body.
SERVE: dict[str, Check] = {
    **GEMINI,
    "unauthorized": refused(401, {"type": "unauthorized"}),
    "rate_limit": refused(429, {"type": "rate_limit"}, EXPECTED),
    "unavailable": refused(503, {"type": "unavailable"}, EXPECTED),
}


@pytest.mark.parametrize("case", list(WEBSOCKET_FAULTS))
def test_genai_live_under_each_fault_of_the_handshakes_header_through_serve(
    case: str, served: ServeProcess, tls: Tls
) -> None:
    wait_s = STALL_WAIT_S if case == "ws_stall" else HANG_WAIT_S
    headers = {"X-Llmcassette-Fault": WEBSOCKET_FAULTS[case]}
    outcome = asyncio.run(live_conversation(served.url, tls.client, wait_s=wait_s, headers=headers))
    SERVE[case](outcome)


def test_genai_live_under_a_fault_of_the_fault_flag(recorded: Path, tls: Tls) -> None:
    process = ServeProcess(str(recorded), *tls_args(tls), "--fault", "ws_close:code=1011,after=2")
    try:
        outcome = asyncio.run(live_conversation(process.url, tls.client))
    finally:
        process.stop()
    GEMINI["ws_close_1011"](outcome)


def test_http_is_recorded_and_served_over_https(tls: Tls, tmp_path: Path) -> None:
    path = tmp_path / "http.yaml"
    with (
        serve(stream_app()) as upstream,
        Recorder(path, routes=RouteTable(upstream=upstream), tls_cert=tls.cert, tls_key=tls.key) as url,
    ):
        assert url.startswith("https://")
        live = httpx.post(f"{url}/json", json={"hello": "tls"}, verify=tls.client)
    assert live.status_code == 200
    process = ServeProcess(str(path), *tls_args(tls))
    try:
        replayed = httpx.post(f"{process.url}/json", json={"hello": "tls"}, verify=tls.client)
        with pytest.raises(httpx.RemoteProtocolError):  # it speaks TLS only: a plain request is hung up on
            httpx.post("http" + process.url.removeprefix("https") + "/json", json={"hello": "tls"})
    finally:
        process.stop()
    assert (replayed.status_code, replayed.json()) == (200, live.json())


# -- the options used wrongly -----------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _bad_files(tls: Tls, folder: Path) -> dict[str, tuple[list[str], str]]:
    other = trustme.CA().issue_cert("127.0.0.1")
    not_pem = folder / "not.pem"
    not_pem.write_text("not a certificate\n")
    other_key = folder / "other-key.pem"
    other.private_key_pem.write_to_path(str(other_key))
    missing = folder / "missing.pem"
    cert, key = str(tls.cert), str(tls.key)
    return {
        "cert-alone": (
            ["--tls-cert", cert],
            "--tls-cert was given without --tls-key; give both (the server's certificate and its "
            "private key, as PEM files), or neither to listen on plain http.",
        ),
        "key-alone": (["--tls-key", key], "--tls-key was given without --tls-cert; give both"),
        "missing": (
            ["--tls-cert", str(missing), "--tls-key", key],
            f"invalid value for '--tls-cert': --tls-cert '{missing}' does not exist; give the "
            "certificate's PEM file.",
        ),
        "folder": (
            ["--tls-cert", cert, "--tls-key", str(folder)],
            f"invalid value for '--tls-key': --tls-key '{folder}' is a folder",
        ),
        "not-a-cert": (
            ["--tls-cert", str(not_pem), "--tls-key", key],
            f"invalid value for '--tls-cert': --tls-cert '{not_pem}' holds no PEM certificate",
        ),
        "not-a-key": (
            ["--tls-cert", cert, "--tls-key", str(not_pem)],
            f"invalid value for '--tls-key': --tls-key '{not_pem}' holds no PEM private key",
        ),
        "other-key": (
            ["--tls-cert", cert, "--tls-key", str(other_key)],
            f"invalid value for '--tls-key': --tls-key '{other_key}' is not the private key of "
            f"--tls-cert '{cert}'",
        ),
    }


BAD = ["cert-alone", "key-alone", "missing", "folder", "not-a-cert", "not-a-key", "other-key"]


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("command", ["record", "serve"])
def test_tls_options_used_wrongly_are_one_line_usage_errors(
    command: str, case: str, tls: Tls, recorded: Path, tmp_path: Path
) -> None:
    args, starts = _bad_files(tls, tmp_path)[case]
    output = tmp_path / "out.yaml"
    first = (
        ["-o", str(output), "--upstream", "http://127.0.0.1:9"] if command == "record" else [str(recorded)]
    )
    result = invoke(command, *first, *args, *(["--", "true"] if command == "record" else []))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"llmcassette: {starts}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert not output.exists()
