"""What a ``byoa`` subcommand is: its one-line help and how it sets up its parser.

Command modules export :class:`Command` objects; ``pyproject.toml`` lists them under
``[project.entry-points."byoa.commands"]`` (the name is the subcommand, the extra in
brackets is what it needs), and ``router.cli`` loads that table. No module registers
itself at import, so ``router`` never imports ``simulations`` by name.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

#: The entry-point group that lists the commands.
GROUP = "byoa.commands"


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: ``help`` for ``byoa --help``, ``setup`` adds its options and
    sets ``func`` (which returns the exit code); ``order`` places it in the help
    (entry points come in no particular order)."""

    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    order: int
