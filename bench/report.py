"""Figures next to their same-run ceilings: one Row each, printed as a text table and as Markdown."""

import msgspec


class Row(msgspec.Struct, kw_only=True):
    """One figure. `ratio` is figure/ceiling for rates and ceiling/figure for latencies (higher is better)."""

    name: str
    value: str
    ceiling: str = ""
    ratio: float | None = None
    target: str = ""
    verdict: str = ""
    background: str = ""
    note: str = ""


def rate(value: float) -> str:
    return f"{value:,.0f} ev/s"


def ms(value: float) -> str:
    return f"{value:.2f} ms"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("meets" if ok else "MISSES")


def percentile(ordered: list[float], q: float) -> float:
    """The q-quantile (0..1) of an already sorted list, nearest rank; NaN when empty."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


HEADERS = ("figure", "measured", "ceiling (same run)", "ratio", "§5 target", "verdict", "other load")


def _cells(row: Row) -> tuple[str, ...]:
    shown = "" if row.ratio is None else f"{row.ratio * 100:.0f} %"
    return row.name, row.value, row.ceiling, shown, row.target, row.verdict, row.background


def text_table(rows: list[Row]) -> str:
    cells = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(HEADERS))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  [{n}] {r.name}: {r.note}" for n, r in enumerate(rows, 1) if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    notes = [f"- **{r.name}**: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))
