"""Alert state of a balance against a wallet's thresholds (inclusive; critical, then warning, then info)."""

from decimal import Decimal

from domain.settings import AlertSettings, AlertState, AlertThreshold


def crosses(threshold: AlertThreshold, value: Decimal) -> bool:
    if threshold.condition == "below":
        return value <= threshold.threshold
    return value >= threshold.threshold


def alert_state(settings: AlertSettings | None, value: Decimal) -> AlertState:
    if settings is None or not settings.alert_enabled:
        return "ok"
    if settings.critical is not None and crosses(settings.critical, value):
        return "in_alarm"
    if settings.warning is not None and crosses(settings.warning, value):
        return "warning"
    if settings.info is not None and crosses(settings.info, value):
        return "info"
    return "ok"


def check_settings(settings: AlertSettings) -> list[str]:
    """What is wrong with alert settings, as Flexprice validates them; an empty list when they are sound."""
    problems: list[str] = []
    levels = [t for t in (settings.critical, settings.warning, settings.info) if t is not None]
    if settings.warning is not None and settings.critical is None:
        problems.append("warning threshold needs a critical threshold")
    if settings.info is not None and settings.critical is None and settings.warning is None:
        problems.append("info threshold needs a critical or warning threshold")
    if settings.alert_enabled and not levels:
        problems.append("alerts are enabled but no threshold is set")
    if len({t.condition for t in levels}) > 1:
        problems.append("all thresholds must share one condition")
    elif levels:
        values = [t.threshold for t in levels]
        ascending = levels[0].condition == "below"
        ordered = values == sorted(values) if ascending else values == sorted(values, reverse=True)
        if not ordered or len(set(values)) != len(values):
            relation = "below warning below info" if ascending else "above warning above info"
            problems.append(f"thresholds must be strictly ordered: critical {relation}")
    return problems
