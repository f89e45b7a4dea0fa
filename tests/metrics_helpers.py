"""Reading Prometheus text with prometheus-client's own parser, and a migration that fails."""

from __future__ import annotations

Labels = frozenset[tuple[str, str]]


def samples(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def families(text: str) -> dict[str, str]:
    """Family name -> type, as the parser reads them (counters without `_total`)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f.type for f in text_string_to_metric_families(text)}


def value(found: dict[tuple[str, Labels], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def series(found: dict[tuple[str, Labels], float], name: str) -> dict[Labels, float]:
    return {labels: v for (n, labels), v in found.items() if n == name}
