"""Counting the Python work of a call instead of timing it: the bytecodes and the
Python-level calls it executes, from ``sys.settrace`` opcode events. The count is
the same on every run of the same code, whatever the machine's load; C work
(dict, heap, numpy, SimPy's C parts) is not counted."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def count_python(fn: Callable[[], T]) -> tuple[T, int, int]:
    """``fn()``'s result, and the bytecodes and Python-level calls executed inside
    it (``fn``'s own frame included when it is a Python function)."""
    ops = calls = 0

    def trace(frame: Any, event: str, _arg: Any) -> Any:
        nonlocal ops, calls
        if event == "call":
            calls += 1
            frame.f_trace_opcodes = True
        elif event == "opcode":
            ops += 1
        return trace

    sys.settrace(trace)
    try:
        out = fn()
    finally:
        sys.settrace(None)
    return out, ops, calls
