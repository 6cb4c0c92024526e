"""X1 and D1 for ``byoa replay``'s output bytes: the rejections text kept encoded in
pieces by the candidate index is exactly ``json.dumps`` of the map, and the
indexed engine writes the same bytes as the naive scan (key order included)."""

from __future__ import annotations

import copy
import json
from typing import Any

from _util import events
from hypothesis import given, settings
from hypothesis import strategies as st

from router import candidates
from router.accounts import Account
from router.io.replay import encode_record, replay_events
from router.ledger import Policy
from router.pool import Pool
from router.strategies import Strategy
from router.testing import event_scripts, pools


def _lines(accounts: list[Account], policy: Policy, script: list[dict[str, Any]],
           indexed: bool) -> list[tuple[str, str]]:
    pool = Pool(copy.deepcopy(accounts), copy.deepcopy(policy), indexed=indexed)
    return [(encode_record(rec), json.dumps(rec)) for rec in replay_events(pool, events(script))]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(Strategy)), st.data())
def test_X1_D1_replay_bytes_are_json_dumps_and_equal_the_scan(strategy: Strategy,
                                                               data: st.DataObject) -> None:
    """X1/D1: every written line is ``json.dumps`` of its record, byte for byte (the
    spliced rejections text included), and the indexed engine's lines equal the
    naive scan's, rejections in id order. The pieces the text is kept in are made
    small (1-3 ids) as well as the default, so that a pool spans several."""
    accounts, policy = data.draw(pools(strategies=[strategy]))
    bots = [a.bot_id for a in accounts if a.bot_id is not None]
    script = data.draw(event_scripts([a.id for a in accounts], bots, max_events=60))
    default, candidates._CHUNK = candidates._CHUNK, data.draw(st.sampled_from([1, 2, 3, 64]))
    try:
        indexed = _lines(accounts, policy, script, indexed=True)
    finally:
        candidates._CHUNK = default
    for written, dumped in indexed:
        assert written == dumped
    assert [w for w, _d in indexed] == [w for w, _d in _lines(accounts, policy, script, False)]
