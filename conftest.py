"""
Suite-wide guard: tests may reach loopback only.

Every test runs without network and without API keys. A connection or name lookup for anything
but the loopback range fails at once with a clear error, so a replay that would silently reach a
real provider breaks the test instead.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

collect_ignore_glob = ["cassettes/*", "bench/*"]

# litellm fetches its model cost map at import unless told to use the bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _refuse(host: Any) -> OSError:
    return OSError(f"llmcassette test guard: tests may only reach loopback, not {host!r}.")


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, str(_refuse(host)))
    return _real_getaddrinfo(host, *args, **kwargs)


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise _refuse(address[0])


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


socket.getaddrinfo = _guarded_getaddrinfo
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _replay_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The replay cache of the session's cassettes stays in the session's temporary folder (and
    # reaches pytester's child processes through the environment), never in the user's own.
    previous = os.environ.get("LLMCASSETTE_CACHE_DIR")
    os.environ["LLMCASSETTE_CACHE_DIR"] = str(tmp_path_factory.mktemp("replay-cache"))
    yield
    if previous is None:
        del os.environ["LLMCASSETTE_CACHE_DIR"]
    else:
        os.environ["LLMCASSETTE_CACHE_DIR"] = previous
