"""
How old a recording is: each interaction's date is the ``Date`` header its response carried (every
provider sends one), or a ``recorded_at`` timestamp where a cassette stores one. ``lint
--max-age-days`` and the pytest option ``--llm-max-age-days`` flag what is older than a limit, so
that recordings which no longer show what the provider sends are noticed and recorded again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ._models import CassetteDocument, Interaction, header_get

__all__ = ["recorded_at", "stale_interactions"]


def recorded_at(interaction: Interaction) -> datetime | None:
    """When ``interaction`` was recorded, or None when the cassette does not say."""
    stamp = (interaction.model_extra or {}).get("recorded_at")
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    value = header_get(interaction.response.headers, "date")
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stale_interactions(
    document: CassetteDocument, max_age_days: float, *, now: datetime | None = None
) -> Iterator[tuple[int, float]]:
    """Each interaction recorded more than ``max_age_days`` ago: its index and its age in days."""
    moment = now or datetime.now(UTC)
    for index, interaction in enumerate(document.interactions):
        when = recorded_at(interaction)
        if when is None:
            continue
        age_days = (moment - when).total_seconds() / 86400.0
        if age_days > max_age_days:
            yield index, age_days
