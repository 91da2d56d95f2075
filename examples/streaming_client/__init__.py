"""An OpenAI-compatible streaming client with backoff, on httpx2."""
