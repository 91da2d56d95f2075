"""stream faults."""

__all__: list[str] = []
