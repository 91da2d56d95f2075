"""
Record ``cassettes/gateway.yaml``: the gateway client against a local stand-in for the gateway.

Run from the repository root::

    python -m examples.gateway_client.record

The stand-in issues opaque tokens (``gw-session-1``, ``gw-session-2``, ...) to the one client it
knows and accepts only tokens it issued. The script records a chat, which fetches the first token,
then one more token fetch: that is the request the client makes after a 401, and the tests need
a recorded answer for it. Replayed, the two fetches hand out two different tokens, which is how a
test sees that the retry carried a refreshed one.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import llmcassette
from examples.gateway_client.client import GatewayClient
from examples.upstream import completion, serve

CASSETTE = Path(__file__).parent / "cassettes" / "gateway.yaml"
PORT = 8411
BASE_URL = f"http://127.0.0.1:{PORT}"
CLIENT_ID = "examples-app"
CLIENT_SECRET = "dummy-client-secret"
MODEL = "gateway-small"
MESSAGES = [{"role": "user", "content": "Say hello to the gateway."}]
REPLY = "Hello, gateway! Your token worked."


def gateway_app() -> Starlette:
    """The stand-in gateway: a token endpoint and a chat endpoint that checks tokens."""
    issued: set[str] = set()
    expected_basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

    async def token(request: Request) -> Response:
        # Parsed by hand: starlette's form parser needs python-multipart, which is not installed.
        form = parse_qs((await request.body()).decode())
        if request.headers.get("authorization") != f"Basic {expected_basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        access_token = f"gw-session-{len(issued) + 1}"
        issued.add(access_token)
        return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": 300})

    async def chat(request: Request) -> Response:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or presented not in issued:
            error = {"message": "invalid or expired token", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=401)
        body = await request.json()
        return JSONResponse(completion(REPLY, model=body["model"]))

    return Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


def main() -> None:
    with (
        serve(gateway_app(), port=PORT),
        llmcassette.use_cassette(CASSETTE, record_mode="rewrite") as cassette,
        GatewayClient(BASE_URL, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as client,
    ):
        reply = client.chat(MESSAGES, model=MODEL)
        assert reply.text == REPLY, reply
        client.refresh_token()
    for attempt in cassette.attempts:
        print(attempt.summary())
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    main()
