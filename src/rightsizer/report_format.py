"""How the report writes values: escaped text, money, numbers, milliseconds, percentages."""

from __future__ import annotations

import html
import math


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- number formatting --------------------------------------------------------------------------


def money(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"${value:,.{digits}f}"


def num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
