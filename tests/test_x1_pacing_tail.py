"""X1 with H2/H3: a saturated decision names the pacing that kept accounts off the
path it tried last. Expected strings written by hand from docs/rules.md (R3, R5,
H2, H3, X1)."""

from __future__ import annotations

import pytest
from _util import T0, acc, fast, pool, relax

from router.accounts import Account


def paced(acc_id: str, *, cap: int | None = None, gap: float = 0.0, fast_s: float | None = None,
          setting: str = "fast") -> Account:
    a = acc(acc_id, fast_s=fast_s, setting=setting)
    a.max_jobs_per_day, a.min_gap_s = cap, gap
    return a


@pytest.mark.parametrize("indexed", [True, False])
def test_X1_R3_fallback_blocked_by_a_daily_cap_names_the_cap(indexed: bool) -> None:
    """R3 then R5, H2: no fast-eligible account, so a fast task falls back to relax;
    the only relax-eligible account reached its daily cap, so the task is
    pool_saturated and the explanation says the daily cap (H2) kept it off. The
    rejections stay the fast path's (the first rule that excluded each account)."""
    p = pool(paced("a1", cap=1, fast_s=0.0), indexed=indexed)
    assert p.submit("t1", relax(), T0).account_id == "a1"
    d = p.submit("t2", fast(), T0 + 1)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections == {"a1": "R2"}
    assert d.explanation == ("0/1 fast-eligible: 1 no fast time (R2); relax-eligible accounts "
                             "exist, none available now (R5): 1 daily cap (H2)")


@pytest.mark.parametrize("indexed", [True, False])
def test_X1_R3_fallback_blocked_by_cap_and_gap_counts_each(indexed: bool) -> None:
    """R3, R5, H2, H3: two relax-set accounts (R6 on the fast path), one at its
    daily cap and one inside its gap; both are named on the relax path, in the
    order H2 then H3."""
    p = pool(paced("a1", cap=1, setting="relax"), paced("a2", gap=600.0, setting="relax"),
             indexed=indexed)
    assert p.submit("t1", relax(), T0).account_id == "a1"
    assert p.submit("t2", relax(), T0 + 1).account_id == "a2"
    d = p.submit("t3", fast(), T0 + 2)
    assert d.error is not None and d.error.code == "pool_saturated"
    assert d.rejections == {"a1": "R6", "a2": "R6"}
    assert d.explanation == ("0/2 fast-eligible: 2 setting=relax (R6); relax-eligible accounts "
                             "exist, none available now (R5): 1 daily cap (H2), 1 gap (H3)")
    later = p.submit("t4", fast(), T0 + 601)  # a2's gap is over (H3): relax on a2 (R3)
    assert later.error is None and later.account_id == "a2" and later.fallback
