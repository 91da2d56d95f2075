"""
The loopback server with TLS (``tls_cert``/``tls_key`` of ``Recorder`` and ``CassetteServer``): the
files checked before anything listens; the header timeout still closing a slowloris once the TLS
handshake is done; and WebSocket sessions on TLS ending as promptly as on plain TCP (a drop, a client
that walks away from a stall, a server stopping with such a session).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from llmcassette import ConfigError
from llmcassette.proxy import CassetteServer, LoopbackServer, Recorder, RouteTable
from llmcassette.proxy._tls import tls_files
from tests.proxy.test_server import _closed_after, _slow_app
from tests.ws.live_upstream import EXPECTED, live_upstream


class Files:
    def __init__(self, folder: Path) -> None:
        authority = trustme.CA()
        issued = authority.issue_cert("127.0.0.1")
        self.ca, self.cert, self.key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
        authority.cert_pem.write_to_path(str(self.ca))
        issued.cert_chain_pems[0].write_to_path(str(self.cert))
        issued.private_key_pem.write_to_path(str(self.key))
        self.client = ssl.create_default_context()
        authority.configure_trust(self.client)
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        issued.configure_cert(self.server)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("tls"))


def test_the_python_api_checks_the_files_by_their_keyword_names(files: Files, tmp_path: Path) -> None:
    cassette = tmp_path / "c.yaml"
    cassette.write_text("interactions: []\n")
    with pytest.raises(ConfigError, match=r"^llmcassette: tls_cert was given without tls_key; give both"):
        CassetteServer([cassette], tls_cert=files.cert)
    with pytest.raises(ConfigError, match=r"^llmcassette: tls_key '.*cert.pem' holds no PEM private key"):
        Recorder(tmp_path / "new.yaml", tls_cert=files.cert, tls_key=files.cert)
    assert not (tmp_path / "new.yaml").exists()
    assert tls_files(None, None) is None


def _tls_connect(url: str, client: ssl.SSLContext) -> ssl.SSLSocket:
    host, port = url.removeprefix("https://").split(":")
    return client.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)


def test_the_header_timeout_closes_half_sent_heads_under_tls(files: Files) -> None:
    tls = tls_files(files.cert, files.key)
    with LoopbackServer(_slow_app(), header_timeout_s=0.5, tls=tls) as url:
        assert url.startswith("https://")
        # Past the TLS handshake, the HTTP protocol sees the decrypted stream: a head never finished,
        # and a connection that says nothing, are closed after the header timeout.
        half = _tls_connect(url, files.client)
        half.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        silent = _tls_connect(url, files.client)
        start = time.monotonic()
        for sock in (half, silent):
            _closed_after(sock, 5.0)
            sock.close()
        assert 0.4 <= time.monotonic() - start < 4


@pytest.fixture(scope="module")
def live(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The lowest-versions run has no google-genai; the tests above run there (on its uvicorn) all the same.
    pytest.importorskip("google.genai")
    from tests.sdk_faults._realtime import live_conversation

    path = tmp_path_factory.mktemp("live") / "live.yaml"
    with pytest.MonkeyPatch.context() as patch, live_upstream(tls=files.server) as upstream:
        # The proxy verifies the upstream's certificate as OpenSSL does by default.
        patch.setenv("SSL_CERT_FILE", str(files.ca))
        routes = RouteTable(upstream=upstream.http_url)
        with Recorder(path, routes=routes, tls_cert=files.cert, tls_key=files.key) as url:
            outcome = asyncio.run(live_conversation(url, files.client))
    assert outcome.error is None and outcome.text == EXPECTED.text
    return path


def test_a_dropped_session_on_tls_ends_at_once(live: Path, files: Files) -> None:
    from tests.sdk_faults._realtime import GEMINI, live_conversation

    # TLS cannot end one direction of a connection (no half-close): the drop closes it instead of
    # waiting for a hang-up the client cannot send before it sees the end (10 s).
    with CassetteServer([live], faults=["ws_drop:after=2"], tls_cert=files.cert, tls_key=files.key) as url:
        start = time.monotonic()
        outcome = asyncio.run(live_conversation(url, files.client))
        elapsed_s = time.monotonic() - start
    GEMINI["ws_drop"](outcome)
    assert elapsed_s < 5


def test_a_client_leaving_a_stall_on_tls_is_let_go_and_the_server_stops_at_once(
    live: Path, files: Files
) -> None:
    from tests.sdk_faults._realtime import GEMINI, live_conversation

    server = CassetteServer([live], faults=["ws_stall:after=2"], tls_cert=files.cert, tls_key=files.key)
    url = server.start()
    try:
        start = time.monotonic()
        # The client gives up after 1 s and closes: the server answers its close and ends the
        # connection (a client would otherwise wait its close timeout, 10 s, for that end).
        outcome = asyncio.run(live_conversation(url, files.client, wait_s=1.0))
        elapsed_s = time.monotonic() - start
    finally:
        stop_start = time.monotonic()
        server.stop()
        stop_s = time.monotonic() - stop_start
    GEMINI["ws_stall"](outcome)
    assert elapsed_s < 5
    # The silent session outlives its connection; stopping ends it instead of waiting the graceful
    # timeout (5 s) for it.
    assert stop_s < 2
