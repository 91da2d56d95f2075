"""
TLS for the loopback server: the certificate and private key that ``record`` and ``serve`` listen with.

Some clients only speak ``https``/``wss`` (google-genai's Live client always dials ``wss://`` when it
has an API key), so the proxy can listen with TLS, on a certificate the user makes for 127.0.0.1
(with ``trustme`` or ``mkcert``) and has the client trust. The files are checked here, before
anything listens, so that a wrong one is a clear error naming it rather than a server that does not
start.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import ConfigError

__all__ = ["TlsFiles", "TlsFilesError", "tls_files"]


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate (PEM, its chain after it) and its private key (PEM), both readable."""

    cert: Path
    key: Path


class TlsFilesError(ConfigError):
    """A TLS option is wrong; ``option`` names the one at fault (None: the two do not go together)."""

    def __init__(self, message: str, option: str | None) -> None:
        super().__init__(message)
        self.option = option


def tls_files(
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
    *,
    names: tuple[str, str] = ("tls_cert", "tls_key"),
) -> TlsFiles | None:
    """
    The TLS files to listen with, or None for plain http when neither is given. Both must be given,
    be readable files, and make a server certificate together, or :class:`TlsFilesError` says which
    one is wrong (``names`` are how the caller calls the two, such as ``--tls-cert``).
    """
    cert_name, key_name = names
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = (cert_name, key_name) if key is None else (key_name, cert_name)
        raise TlsFilesError(
            f"llmcassette: {given} was given without {missing}; give both (the server's certificate "
            "and its private key, as PEM files), or neither to listen on plain http.",
            None,
        )
    files = TlsFiles(Path(cert), Path(key))
    for name, path, what in ((cert_name, files.cert, "certificate"), (key_name, files.key, "private key")):
        try:
            with path.open("rb") as stream:
                stream.read(1)
        except FileNotFoundError:
            reason = "does not exist"
        except IsADirectoryError:
            reason = "is a folder"
        except OSError as exc:
            reason = f"cannot be read ({exc.strerror or exc})"
        else:
            continue
        raise TlsFilesError(f"llmcassette: {name} {str(path)!r} {reason}; give the {what}'s PEM file.", name)
    try:
        # A file of certificates loads as trusted roots: this says whether the first is one at all.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=files.cert)
    except (ssl.SSLError, ValueError):
        raise TlsFilesError(
            f"llmcassette: {cert_name} {str(files.cert)!r} holds no PEM certificate; give the "
            "server's certificate (-----BEGIN CERTIFICATE-----), its chain after it if any.",
            cert_name,
        ) from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(files.cert, files.key, password=_no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            reason = f"is not the private key of {cert_name} {str(files.cert)!r}"
        else:
            reason = "holds no PEM private key (or one protected by a password, which is not supported)"
        raise TlsFilesError(
            f"llmcassette: {key_name} {str(files.key)!r} {reason}; give the PEM private key the "
            "certificate was issued for.",
            key_name,
        ) from None
    return files


def _no_password() -> bytes:
    # Without a callback, OpenSSL would ask for an encrypted key's password on the terminal.
    return b""
