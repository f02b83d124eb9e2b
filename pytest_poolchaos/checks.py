"""Start-up checks that need more than ``settings.py`` may import (it is part of the base).

Each raises ``pytest.UsageError`` naming the option and what it accepts, while pytest is
still configuring: a typo found after the run would have silently done nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .options import OPTIONS

__all__ = ["check_rule_ids"]


def check_rule_ids(disabled: Sequence[str]) -> None:
    """Every id of ``--poolchaos-disable-rules`` names a rule, a prefix of rules, or lies in a
    category's namespace (where third-party rules, unknown until they fire, report)."""
    if not disabled:
        return  # the catalogue is loaded only when there is something to check
    from .classify.catalogue import by_id
    from .model import Category

    ids = by_id()
    known = set(ids) | {category.value for category in Category}
    known |= {rule_id.rpartition(".")[0] for rule_id in ids}
    categories = {category.value for category in Category}
    unknown = [rule for rule in disabled
               if rule not in known and rule.partition(".")[0] not in categories]
    if unknown:
        option = next(option for option in OPTIONS if option.name == "disable_rules")
        raise pytest.UsageError(
            f"{option.cli} / {option.ini}: no rule {', '.join(unknown)}; expected rule ids "
            f"such as expectation.threshold, a category ({', '.join(sorted(categories))}) or "
            f"a third-party rule id in a category's namespace")
