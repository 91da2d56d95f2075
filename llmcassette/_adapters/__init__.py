"""
The in-process doors of HTTP libraries other than httpx and httpx2 (whose transports are patched
in :mod:`llmcassette._intercept`), one module per library. Each only translates its library's
request, chunks and exceptions to and from the engine (:class:`llmcassette._cassette.Cassette`):
matching, faults, scrubbing, the attempt log and the cassette format never know which library
carried a request.
"""
