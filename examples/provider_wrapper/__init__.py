"""A provider wrapper that honours Retry-After and retries empty streams."""
