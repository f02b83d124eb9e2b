from __future__ import annotations

from decimal import Decimal


def bill(usage: Decimal, rate: Decimal) -> Decimal:
    """Exact charge for ``usage`` units at ``rate`` per unit (rounded later, at invoicing)."""
    return usage * rate
