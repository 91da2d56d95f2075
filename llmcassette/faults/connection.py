"""connection faults."""

__all__: list[str] = []
