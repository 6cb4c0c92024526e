"""Where account state lives: one ``Store`` protocol, two implementations.

* ``MemoryStore`` (the default): the in-process ``Pool``/``Ledger``, used by
  ``byoa replay``, the simulator and a single proxy.
* ``RedisStore`` (``router.stores.redis_store``, needs the ``redis`` extra):
  shared state for several proxy processes; reservations are made atomic by Lua
  scripts, while every rule is still decided by ``router.engine`` and
  ``router.ledger`` in Python.
"""

from router.stores.base import Store
from router.stores.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
