"""M rules: which mode a request asks for (M1-M3) and ``apply_mode`` (M4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from router.accounts import Mode

# A mode parameter is a whole whitespace-delimited token: ``--fast`` or the
# em-dash form ``—fast`` (M2), in any case. ``--fastest`` / ``a--fast`` are not.
_MODE_TOKEN = re.compile(r"(?<!\S)(?:--|\u2014)(fast|relax|turbo)(?!\S)", re.IGNORECASE)
_ALLOWED: Final = "fast, relax, turbo"
_BY_NAME: Final[dict[str, Mode]] = {m.value: m for m in Mode}


@dataclass(frozen=True, slots=True)
class ResolvedMode:
    """The requested mode and where it came from (X1)."""

    mode: Mode
    source: str  # "process_mode" | "prompt" | "default" | "parent"
    conflict: tuple[Mode, ...] = ()  # M2: every flag seen, when they disagree

    def __reduce__(self) -> tuple[type[ResolvedMode], tuple[Mode, str, tuple[Mode, ...]]]:
        # Compiled (mypyc), a frozen class refuses the field assignments that copy
        # and pickle make by default: they rebuild it from its fields (issue 13).
        return (ResolvedMode, (self.mode, self.source, self.conflict))


class ModeError(ValueError):
    """M1: a ``process_mode`` that is not fast/relax/turbo."""


def prompt_modes(prompt: str) -> list[Mode]:
    """Every mode parameter in ``prompt``, in order (M2)."""
    return [Mode(m.group(1).lower()) for m in _MODE_TOKEN.finditer(prompt)]


def parse_process_mode(value: object) -> Mode | None:
    """M1: a non-empty ``process_mode`` names the mode; empty/absent/null is None.

    Raises ``ModeError`` for anything else, listing the allowed values.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModeError(
            f"input.process_mode: expected a string, one of {_ALLOWED}, got {value!r} (M1)"
        )
    text = value.strip().lower()
    if not text:
        return None
    mode = _BY_NAME.get(text)
    if mode is None:
        raise ModeError(f"input.process_mode: {value!r} is not one of {_ALLOWED} (M1)")
    return mode


#: The resolutions without a conflict, built once (immutable): resolving a
#: request then builds nothing.
_FROM_PROCESS_MODE: Final = {m: ResolvedMode(m, "process_mode") for m in Mode}
_FROM_PROMPT: Final = {m: ResolvedMode(m, "prompt") for m in Mode}
_DEFAULT: Final = ResolvedMode(Mode.RELAX, "default")
#: ``_FROM_PROCESS_MODE`` by exact spelling: one lookup by a string resolves the
#: usual request (issue 13)
_BY_SPELLING: Final = {m.value: r for m, r in _FROM_PROCESS_MODE.items()}


def resolve_mode(process_mode: object, prompt: str | None) -> ResolvedMode:
    """M1 over M2 over M3 (M4): the requested mode of a root task."""
    if type(process_mode) is str:  # M1 spelled exactly, the usual request: no stripping
        exact = _BY_SPELLING.get(process_mode)
        if exact is not None:
            return exact
    explicit = parse_process_mode(process_mode)
    if explicit is not None:
        return _FROM_PROCESS_MODE[explicit]
    flags = prompt_modes(prompt or "") if prompt and ("--" in prompt or "\u2014" in prompt) else ()
    if flags:
        if len(set(flags)) > 1:
            return ResolvedMode(flags[-1], "prompt", tuple(flags))  # M2: last one wins
        return _FROM_PROMPT[flags[-1]]
    return _DEFAULT  # M3


def apply_mode(prompt: str, mode: Mode | str) -> str:
    """M4: rewrite ``prompt`` so that its only mode parameter is ``--<mode>``.

    Existing mode tokens (either dash form, any case) are removed together with
    the whitespace before them; everything else is kept byte for byte, and
    ``--<mode>`` is appended at the end.
    """
    m = Mode(mode)
    parts = re.split(r"(\s+)", prompt)
    kept: list[str] = []
    for part in parts:
        if part and not part.isspace() and _MODE_TOKEN.fullmatch(part):
            if kept and kept[-1].isspace():
                kept.pop()
            continue
        kept.append(part)
    body = "".join(kept).strip()
    return f"{body} --{m.value}" if body else f"--{m.value}"
