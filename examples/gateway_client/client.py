"""
A client for a company LLM gateway that hands out short-lived access tokens.

The gateway speaks OpenAI's chat API (``POST /v1/chat/completions``) and accepts a bearer token
from its own token endpoint (``POST /oauth/token``, OAuth2 client credentials). Tokens expire
after a few minutes, and the gateway may revoke one early, so the client:

- fetches a token lazily and reuses it until shortly before it expires;
- on a 401, fetches a new token and retries the request **once**; a second 401 means the
  credentials themselves are refused, so it raises :class:`GatewayAuthError` instead of looping.

Other errors are not retried here: they are raised as :class:`GatewayError` with the gateway's
own message. The tests in ``tests/test_gateway_client.py`` prove the refresh with
``unauthorized:times=1``, and the give-up with ``unauthorized`` on every call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

__all__ = ["ChatReply", "GatewayAuthError", "GatewayClient", "GatewayError"]

#: Refresh this long before the announced expiry, so a token does not expire on the way.
EXPIRY_MARGIN_S = 30.0


class GatewayError(Exception):
    """The gateway answered with an error."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class GatewayAuthError(GatewayError):
    """The gateway refused the credentials, even with a freshly issued token."""


@dataclass(frozen=True)
class ChatReply:
    text: str
    model: str
    finish_reason: str | None


class GatewayClient:
    """Chat through the gateway as ``client_id``. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        timeout_s: float = 60.0,
    ) -> None:
        self._credentials = (client_id, client_secret)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)
        self._token: str | None = None
        self._expires_at = 0.0

    # -- tokens ------------------------------------------------------------------------------

    def token(self) -> str:
        """The current access token, fetched when there is none or it is about to expire."""
        if self._token is None or time.monotonic() >= self._expires_at:
            return self.refresh_token()
        return self._token

    def refresh_token(self) -> str:
        """Fetch a new access token from the gateway, whatever the state of the current one."""
        # Client credentials go in Basic auth, as OAuth2 recommends, never in the body.
        response = self._http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=self._credentials
        )
        if response.status_code in (400, 401):
            raise GatewayAuthError(
                f"the gateway refused the client credentials: {_detail(response)}",
                status=response.status_code,
            )
        _raise_for_error(response)
        grant = response.json()
        self._token = str(grant["access_token"])
        self._expires_at = time.monotonic() + float(grant.get("expires_in", 300)) - EXPIRY_MARGIN_S
        return self._token

    # -- chat --------------------------------------------------------------------------------

    def chat(self, messages: list[dict[str, str]], *, model: str) -> ChatReply:
        """One chat completion; refreshes the token and retries once if it is refused."""
        payload = {"model": model, "messages": messages}
        response = self._post_chat(payload, self.token())
        if response.status_code == 401:
            # The token expired or was revoked since we got it: one fresh token, one more try.
            response = self._post_chat(payload, self.refresh_token())
            if response.status_code == 401:
                raise GatewayAuthError(
                    f"the gateway refused a freshly issued token: {_detail(response)}", status=401
                )
        _raise_for_error(response)
        body = response.json()
        choice = body["choices"][0]
        return ChatReply(
            text=choice["message"].get("content") or "",
            model=str(body.get("model", model)),
            finish_reason=choice.get("finish_reason"),
        )

    def _post_chat(self, payload: dict[str, Any], token: str) -> httpx.Response:
        return self._http.post(
            "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {token}"}
        )

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _detail(response: httpx.Response) -> str:
    """The error message from an OpenAI-style error body, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(error or response.reason_phrase)


def _raise_for_error(response: httpx.Response) -> None:
    if response.is_error:
        raise GatewayError(
            f"gateway error {response.status_code}: {_detail(response)}", status=response.status_code
        )
