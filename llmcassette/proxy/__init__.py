"""
The out-of-process front door: a recording reverse proxy and a cassette server, both on loopback.

Any program that lets you set a base URL can be recorded (``llmcassette record``) and replayed
(``llmcassette serve``), with the same cassette format, matching, faults and provider profiles as
the in-process path.
"""

from ._record import Recorder, RecordingProxy
from ._routes import KNOWN_ROUTES, PROXY_URL_ENV, Route, RouteTable, parse_route
from ._serve import FAULT_HEADER, SERVE_MATCH_ON, CassetteApp, CassetteServer
from ._server import LoopbackServer

__all__ = [
    "FAULT_HEADER",
    "KNOWN_ROUTES",
    "PROXY_URL_ENV",
    "SERVE_MATCH_ON",
    "CassetteApp",
    "CassetteServer",
    "LoopbackServer",
    "Recorder",
    "RecordingProxy",
    "Route",
    "RouteTable",
    "parse_route",
]
