"""status faults."""

__all__: list[str] = []
