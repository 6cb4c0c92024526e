"""The accounts file (docs/formats.md): JSON, TOML or YAML -> accounts and policy.

Validation happens here, at the boundary, with pydantic. Every problem is
reported with the file, the line, the field and what was expected; all of them
at once, so a person fixes the file in one pass.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from router.accounts import (
    DEFAULT_ESTIMATE_SECONDS,
    PLAN_ALLOWANCE_MS,
    PLAN_MAX_IN_FLIGHT,
    Account,
    InactiveWindow,
    Plan,
    Setting,
    Status,
    hours_to_ms,
)
from router.errors import InputError
from router.io.boundary import refuse_toml_bom, validation_error
from router.io.files import read_text
from router.io.limits import MAX_HOURS, MAX_SECONDS, MAX_WEIGHT, parse_bounded_time
from router.io.locate import (
    PathKey,
    format_path,
    json_lines,
    nearest_line,
    toml_lines,
    yaml_lines,
)
from router.ledger import Policy
from router.pool import Pool
from router.timeutil import parse_clock, parse_time

_UNKNOWN = "unknown field (not in the contract's accounts format)"

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class WindowModel(BaseModel):
    model_config = _STRICT
    start: str
    end: str

    @model_validator(mode="before")
    @classmethod
    def _table(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError(f"expected start and end as UTC clock times HH:MM, such as "
                             f'{{"start": "02:00", "end": "10:00"}}, got {v!r}')
        return v

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        parse_clock(v)
        return v


class AccountModel(BaseModel):
    model_config = _STRICT
    id: str = Field(min_length=1)
    plan: Plan = Field(strict=False)
    setting: Setting = Field(default=Setting.FAST, strict=False)
    status: Status = Field(default=Status.ACTIVE, strict=False)
    fast_hours_remaining: float | None = Field(default=None, ge=0, le=MAX_HOURS)
    renews_at: str | None = None

    @field_validator("renews_at", mode="before")
    @classmethod
    def _toml_datetime(cls, v: Any) -> Any:
        if isinstance(v, datetime):  # TOML's native date-time
            if v.tzinfo is None:
                v = v.replace(tzinfo=UTC)
            return v.isoformat()
        return v
    weight: float = Field(default=1.0, ge=0, le=MAX_WEIGHT)
    backup: bool = False
    max_in_flight: int | None = Field(default=None, ge=0)  # 0: no room, a paused account
    bot_id: int | None = Field(default=None, gt=0)
    inactive_window: WindowModel | None = None
    max_jobs_per_day: int | None = Field(default=None, gt=0)  # H2
    min_gap_seconds: float = Field(default=0.0, ge=0, le=MAX_SECONDS)  # H3

    @field_validator("renews_at")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is not None:
            parse_bounded_time(v)
        return v

    @field_validator("id", mode="before")
    @classmethod
    def _id_not_boolean(cls, v: Any) -> Any:
        if isinstance(v, bool):  # YAML reads unquoted no/yes/on/off/true/false so
            raise ValueError(f"expected a string, got {v!r} (in YAML, put ids such as "
                             "no, yes, on or off in quotes)")
        return v

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, v: str) -> str:
        return check_account_id(v)


def check_account_id(v: str) -> str:
    """An account id as a file may give it: not blank, no spaces at either end (``"a1 "``
    beside ``"a1"`` would be two accounts that look alike), no control characters."""
    if not v.strip():
        raise ValueError("expected a non-empty account id")
    if v != v.strip():
        raise ValueError(f"expected an account id without spaces at the start or end, "
                         f"got {v!r}")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in v):
        raise ValueError(f"expected an account id without control characters, got {v!r}")
    return v


#: Checks on ``Policy`` fields beyond their types (the dataclass declares the fields,
#: their types and defaults; a new field is read from every file format unchanged).
_POLICY_CHECKS: dict[str, dict[str, Any]] = {
    "strategy": {"strict": False},  # S: named by its value
    "upgrade_relax_horizon_hours": {"ge": 0, "le": MAX_HOURS, "strict": False},
}
#: ``estimates`` in a file are R9 overrides, merged into the defaults (and checked
#: by ``apply_policy`` with the line of the bad entry).
_POLICY_OVERRIDES: dict[str, tuple[Any, Any]] = {"estimates": (dict[str, float] | None, None)}


def policy_model(model_name: str, *, optional: bool = False,
                 exclude: frozenset[str] = frozenset(),
                 **extra: tuple[Any, Any]) -> type[BaseModel]:
    """A pydantic model of ``router.Policy``'s fields, built from the dataclass.

    Every file format that sets routing options (the accounts file's ``policy``, a
    scenario's ``[policy]`` and ``[[variants]]``, a sweep's ``[[policy]]``) validates
    through a model made here, so an option is declared once, in ``Policy``.
    ``optional``: every option defaults to ``None`` (= keep the base policy's);
    ``exclude``: options the format sets another way; ``extra``: the format's own
    fields, as ``create_model`` takes them.
    """
    hints = typing.get_type_hints(Policy)
    base = Policy()
    fields: dict[str, Any] = dict(extra)
    for f in dataclasses.fields(Policy):
        if f.name in exclude:
            continue
        kind, default = _POLICY_OVERRIDES.get(f.name, (hints[f.name], getattr(base, f.name)))
        if optional:
            kind, default = kind | None, None
        checks = _POLICY_CHECKS.get(f.name, {})
        fields[f.name] = (kind, Field(default=default, **checks))
    model: type[BaseModel] = create_model(model_name, __config__=_STRICT, **fields)
    return model


def apply_policy(base: Policy, options: BaseModel, *, lines: dict[PathKey, int] | None = None,
                 source: str = "", at: PathKey = ("policy",)) -> Policy:
    """``base`` with the options set in ``options`` (a ``policy_model`` instance);
    ``None`` keeps the base's value, ``estimates`` are merged into the base's.

    Bad estimates are reported at ``source`` with the line from ``lines`` (R9).
    """
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(Policy):
        if f.name not in type(options).model_fields:
            continue
        value = getattr(options, f.name)
        if value is None:
            continue
        if f.name == "estimates":
            value = {**base.estimates, **_checked_estimates(value, lines or {}, source, at)}
        changes[f.name] = value
    return dataclasses.replace(base, **changes)


def _checked_estimates(estimates: dict[str, float], lines: dict[PathKey, int], source: str,
                       at: PathKey) -> dict[str, float]:
    def error(key: str, message: str) -> InputError:
        path = (*at, "estimates", key)
        return InputError(message, source=source, line=nearest_line(lines, path),
                          field=format_path(path))

    unknown = [k for k in estimates if k not in DEFAULT_ESTIMATE_SECONDS]
    if unknown:
        raise error(unknown[0], f"unknown task type; expected one of "
                    f"{', '.join(DEFAULT_ESTIMATE_SECONDS)} (R9)")
    bad = [k for k, v in estimates.items() if v < 0]
    if bad:
        raise error(bad[0], f"expected seconds >= 0, got {estimates[bad[0]]}")
    huge = [k for k, v in estimates.items() if v > MAX_SECONDS]
    if huge:
        raise error(huge[0], f"expected seconds <= {MAX_SECONDS:,}, got {estimates[huge[0]]}")
    return estimates


if TYPE_CHECKING:
    PolicyModel = BaseModel
else:
    #: The ``policy`` object of the accounts file (and a scenario's ``[policy]``).
    PolicyModel = policy_model("PolicyModel")


class AccountsFile(BaseModel):
    model_config = _STRICT
    policy: PolicyModel = Field(default_factory=PolicyModel)
    accounts: list[AccountModel]


Format = Literal["json", "toml", "yaml"]


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that keeps times and ``02:00`` as strings (no YAML 1.1
    timestamps or base-60 integers), so YAML reads like the JSON contract."""


_YamlLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers
         if tag not in ("tag:yaml.org,2002:timestamp",)]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _ch in list("-+0123456789"):
    _YamlLoader.yaml_implicit_resolvers[_ch] = [
        (tag, rx) for tag, rx in _YamlLoader.yaml_implicit_resolvers[_ch]
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _format_of(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "json"


def _parse(text: str, fmt: Format, source: str) -> tuple[Any, dict[PathKey, int]]:
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                             source=source, line=exc.lineno) from None
        return data, json_lines(text)
    if fmt == "toml":
        refuse_toml_bom(text, source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"\(at line (\d+), column (\d+)\)$", str(exc))
            if m is None:
                raise InputError(f"not valid TOML: {exc}", source=source) from None
            problem = str(exc)[:m.start()].rstrip()
            raise InputError(f"not valid TOML: {problem} (column {m.group(2)})",
                             source=source, line=int(m.group(1))) from None
        return data, toml_lines(text)
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", source=source, line=line) from None
    return data, yaml_lines(text)


def parse_accounts(text: str, *, source: str = "<accounts>",
                   fmt: Format = "json") -> tuple[list[Account], Policy]:
    """Validate an accounts document and build ``Account`` objects and the ``Policy``."""
    data, lines = _parse(text, fmt, source)
    if not isinstance(data, dict):
        raise InputError("expected an object with an 'accounts' list", source=source, line=1)
    try:
        model = AccountsFile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, lines, source, _UNKNOWN, "") from None
    accounts = accounts_from_models(model.accounts, lines, source)
    return accounts, apply_policy(Policy(), model.policy, lines=lines, source=source)


def accounts_from_models(models: list[AccountModel], lines: dict[PathKey, int],
                         source: str, at: PathKey = ("accounts",)) -> list[Account]:
    """Validated account models -> ``Account`` objects; ids and bot ids must be unique."""
    accounts: list[Account] = []
    seen: dict[str, int] = {}
    bots: dict[int, int] = {}
    problems = []
    name = format_path(at)
    for i, am in enumerate(models):
        line = nearest_line(lines, (*at, i, "id"))
        where = f"{source}:{line}" if line else source
        if am.id in seen:
            problems.append(f"{where}: {name}[{i}].id: duplicate account id {am.id!r} "
                            f"(first at {name}[{seen[am.id]}]); ids must be unique")
        seen.setdefault(am.id, i)
        if am.bot_id is not None:
            if am.bot_id in bots:
                bline = nearest_line(lines, (*at, i, "bot_id"))
                problems.append(f"{source}:{bline}: {name}[{i}].bot_id: duplicate bot_id "
                                f"{am.bot_id} (also {name}[{bots[am.bot_id]}]); bot ids "
                                "must be unique (R7)")
            bots.setdefault(am.bot_id, i)
        accounts.append(account_from_model(am))
    if problems:
        raise InputError("\n".join(problems))
    return accounts


def account_from_model(am: AccountModel) -> Account:
    """One validated account entry as an ``Account`` (plan defaults filled in)."""
    plan = am.plan
    fast_ms = (PLAN_ALLOWANCE_MS[plan] if am.fast_hours_remaining is None
               else hours_to_ms(am.fast_hours_remaining))
    window = None
    if am.inactive_window is not None:
        start = parse_clock(am.inactive_window.start)
        end = parse_clock(am.inactive_window.end)
        window = InactiveWindow(start, end) if start != end else None
    return Account(
        id=am.id, plan=plan, setting=am.setting, status=am.status, fast_ms=fast_ms,
        renews_at=parse_time(am.renews_at) if am.renews_at else None,
        weight=am.weight, backup=am.backup,
        max_in_flight=PLAN_MAX_IN_FLIGHT[plan] if am.max_in_flight is None else am.max_in_flight,
        bot_id=am.bot_id, inactive_window=window,
        max_jobs_per_day=am.max_jobs_per_day, min_gap_s=float(am.min_gap_seconds),
    )


def load_accounts(path: str | Path) -> tuple[list[Account], Policy]:
    """Read an accounts file; the format follows the suffix (.json/.toml/.yaml)."""
    p = Path(path)
    return parse_accounts(read_text(p), source=str(p), fmt=_format_of(p))


def load_pool(path: str | Path, **kwargs: bool) -> Pool:
    """Load an accounts file (JSON/TOML/YAML) into a ready ``Pool``."""
    accounts, policy = load_accounts(path)
    return Pool(accounts, policy, **kwargs)
