"""The Redis store's compare-and-set writes (``Finisher``) name the ledger fields a
rule changed. ``changed_fields`` finds them by comparing unencoded values
(``ledger_state``) instead of two encodings: the fields it names, and their
encoded values, must be exactly the ones the encodings differ in (L1-L4 change
them: charges, flips, renewals; H1/H4 status and corrections)."""

from __future__ import annotations

import copy

from _util import events
from hypothesis import given, settings
from hypothesis import strategies as st

from router.io.replay import replay_events
from router.pool import Pool
from router.stores.codec import changed_fields, ledger_fields, ledger_state
from router.testing import event_scripts, pools


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_changed_fields_are_the_fields_whose_encoding_changed(data: st.DataObject) -> None:
    accounts, policy = data.draw(pools())
    bots = [a.bot_id for a in accounts if a.bot_id is not None]
    script = data.draw(event_scripts([a.id for a in accounts], bots, max_events=60))
    pool = Pool(copy.deepcopy(accounts), copy.deepcopy(policy))
    accs = pool.ledger.accounts.values()
    records = replay_events(pool, events(script))
    while True:
        states = {a.id: (ledger_state(a), ledger_fields(a)) for a in accs}
        if next(records, None) is None:
            break
        for a in accs:
            state, encoded = states[a.id]
            expected = {k: v for k, v in ledger_fields(a).items() if encoded[k] != v}
            assert changed_fields(a, state) == expected, a.id


def test_a_charge_names_fast_time_and_period_only() -> None:
    """L1: a completion's charge moves ``fast_ms`` and the period's ``used_ms``."""
    from router.accounts import Account, Plan
    from router.ledger import Ledger, Policy

    ledger = Ledger([Account(id="a", plan=Plan.PRO)], Policy())
    ledger.advance(0.0)
    acc = ledger.accounts["a"]
    before = ledger_state(acc)
    fast, period = acc.fast_ms, ledger_fields(acc)["period"]
    acc.fast_ms -= 60_000
    assert acc.period is not None
    acc.period.used_ms += 60_000
    got = changed_fields(acc, before)
    assert set(got) == {"fast_ms", "period"}
    assert got["fast_ms"] == str(fast - 60_000) and got["period"] != period
    assert changed_fields(acc, ledger_state(acc)) == {}
