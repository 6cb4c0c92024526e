"""PNG plots (matplotlib, Agg backend): burn-down, waste, waits; what pacing costs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from simulations.metrics import CAUSES

#: Burn-down lines drawn individually up to this many accounts (then the fleet total).
MAX_LINES = 12


def burn_down(fast_time: pd.DataFrame, path: Path) -> Path:
    """Fast hours left per account over time (L4 renewals show as jumps)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if not fast_time.empty:
        wide = fast_time.pivot(index="t", columns="account_id", values="fast_hours_left")
        cols = list(wide.columns)
        for col in cols[:MAX_LINES]:
            ax.plot(wide.index, wide[col], label=str(col), lw=1)
        if len(cols) > MAX_LINES:
            ax2 = ax.twinx()
            ax2.plot(wide.index, wide.sum(axis=1), color="black", lw=2, label="fleet total")
            ax2.set_ylabel("fleet total (h)")
            ax.set_title(f"Fast time left: first {MAX_LINES} of {len(cols)} accounts, "
                         "and the fleet total")
        else:
            ax.set_title("Fast time left per account")
            ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax.set_ylabel("fast hours left")
    ax.set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def waste(periods: pd.DataFrame, path: Path) -> Path:
    """Expired (wasted) fast hours per renewal date and cause."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    closed = periods[periods["closed_in_horizon"] & periods["waste_cause"].notna()]
    if closed.empty:
        ax.text(0.5, 0.5, "no fast time expired inside the horizon", ha="center",
                va="center", transform=ax.transAxes)
    else:
        day = closed["end"].dt.strftime("%Y-%m-%d")
        table = closed.assign(day=day).pivot_table(
            index="day", columns="waste_cause", values="expired_hours", aggfunc="sum",
            fill_value=0.0)
        bottom = np.zeros(len(table))
        for cause in CAUSES:
            if cause in table.columns:
                vals = table[cause].to_numpy()
                ax.bar(table.index, vals, bottom=bottom, label=cause)
                bottom += vals
        ax.legend()
        ax.tick_params(axis="x", rotation=45)
    ax.set_ylabel("expired fast hours")
    ax.set_title("Fast time wasted at renewal, by cause")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def waits(tasks: pd.DataFrame, path: Path) -> Path:
    """Distribution (ECDF) of waits from ready to start, by effective mode."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for mode in ("fast", "turbo", "relax"):
        w = tasks.loc[tasks["effective_mode"] == mode, "wait_s"].dropna().to_numpy()
        if w.size:
            xs = np.sort(w)
            ys = np.arange(1, xs.size + 1) / xs.size
            ax.step(np.maximum(xs, 0.1), ys, where="post", label=f"{mode} (n={xs.size})")
    ax.set_xscale("log")
    ax.set_xlabel("wait from ready to start (s, log; 0 shown at 0.1)")
    ax.set_ylabel("share of tasks")
    ax.set_title("Wait distribution by effective mode")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pacing_costs(table: pd.DataFrame, path: Path) -> Path:
    """What pacing costs (``simulations.sweep.pacing_table``): waits of all tasks (p50,
    p95) and of fast tasks (p95), and the shares queued and downgraded, per fleet."""
    t = table.reset_index()
    parts = ["fleet"] + [k for k in ("policy", "workload") if t[k].nunique() > 1]
    labels = ["\n".join(str(v) for v in row) for row in t[parts].itertuples(index=False)]
    x = np.arange(len(t))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.27
    for k, (col, name) in enumerate((("wait_p50_s", "all tasks p50"),
                                     ("wait_p95_s", "all tasks p95"),
                                     ("fast_wait_p95_s", "fast tasks p95"))):
        ax1.bar(x + (k - 1) * width, t[col].fillna(0.0), width, label=name)
    ax1.set_yscale("symlog", linthresh=10.0)
    ax1.set_ylabel("wait from ready to start (s, symlog)")
    ax1.set_title("Waits")
    ax1.legend(fontsize=8)
    for k, (col, name) in enumerate((("queued_share", "queued (pool_saturated, R5)"),
                                     ("downgraded_share", "fast requests downgraded"))):
        ax2.bar(x + (k - 0.5) * 0.4, 100.0 * t[col].fillna(0.0), 0.4, label=name)
    ax2.set_ylabel("% of tasks / of fast requests")
    ax2.set_title("Queued and downgraded")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    fig.suptitle("What pacing costs: daily cap (H2) and gap (H3) against an unpaced fleet")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        burn_down(tables["fast_time"], out / "fast_time_burn_down.png"),
        waste(tables["periods"], out / "waste_by_period_and_cause.png"),
        waits(tables["tasks"], out / "wait_distribution_by_mode.png"),
    ]
