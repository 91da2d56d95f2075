"""
WebSocket sessions (OpenAI Realtime, Gemini Live): their place in the cassette format, and the
engine that replays and records them, shared by the in-process door
(:mod:`llmcassette._adapters.websockets`) and the proxy.

Importing this package imports nothing heavy: the ``websockets`` library is imported by the
modules that speak the protocol, when they are used.
"""
