"""Where account state lives: one ``Store`` protocol in two parts, two implementations.

* ``MemoryStore`` (the default): the in-process ``Pool``/``Ledger``, used by
  ``byoa replay``, the simulator and a single proxy.
* ``RedisStore`` (``router.stores.redis_store``, needs the ``redis`` extra):
  shared state for several proxy processes; reservations are made atomic by Lua
  scripts, while every rule is still decided by ``router.engine`` and
  ``router.ledger`` in Python.

``Store`` is ``AccountStore`` (account state and the rules that change it) plus
``RecordStore`` (the proxy's task records and the accounts' secrets).
"""

from router.stores.base import AccountStore, RecordStore, Store
from router.stores.memory import MemoryRecords, MemoryStore

__all__ = ["AccountStore", "MemoryRecords", "MemoryStore", "RecordStore", "Store"]
