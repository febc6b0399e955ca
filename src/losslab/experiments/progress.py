"""How long a run will take, how it is going, and what went wrong in its members, in lines people read.

Before anything is created ``run_spec`` estimates the run's training time from the spec (``estimate``: members x
steps of every cell to train, at the cost of a step on a fast machine, so the estimate is a lower bound) and
refuses a run beyond ``max_days`` (``check_length``), saying the estimate and how to run it anyway. While a cell
trains for long, a line says so every ``HEARTBEAT_SECONDS`` (``heartbeat``: the progress bar shows only on a
terminal; logs and schedulers see these lines). A finished cell whose members diverged (their logits no longer
finite: the trainer's ``diverged`` column) gets one line naming how many and which (``describe_diverged``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from losslab.experiments.spec import Cell, Spec, SpecError

#: A run whose estimated training time exceeds this many days stops before training (``max_days`` overrides).
MAX_DAYS = 30.0
#: What a training step costs at least, per member: the model's arithmetic (6 x parameters x batch, forward and
#: backward) at this many FLOP/s, and never less than this many seconds. Generous to the machine on purpose: the
#: estimate is a lower bound, so a run refused for its length is certainly too long.
FAST_FLOPS = {"cpu": 1e12, "cuda": 1e14}
FASTEST_STEP = {"cpu": 1e-6, "cuda": 1e-7}
#: Seconds between the lines that say a cell is still training (local runs) or still queued or running (Ray).
HEARTBEAT_SECONDS = 300.0


def format_duration(seconds: float) -> str:
    """A duration for people: '45 s', '12 min', '3.5 h', '40 days', '3.2e+06 years'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    days = seconds / 86400
    if days < 730:
        return f"{days:.0f} days"
    years = days / 365.25
    return f"{years:,.0f} years" if years < 1e6 else f"{years:.1e} years"


@dataclass(frozen=True)
class Estimate:
    """The least time a run's training can take: every cell's members x steps at a fast step's cost."""

    seconds: float
    member_steps: int
    largest: tuple[str, int, int]  # (cell id, members, steps per member) of the cell with the most member-steps

    def describe(self) -> str:
        cell, members, steps = self.largest
        return (
            f"at least {format_duration(self.seconds)} of training ({self.member_steps:.1e} member-steps; cell "
            f"{cell!r}: {members} member(s) x {steps:,} steps)"
        )


def cell_steps(cell: Cell, dataset) -> list[tuple[int, int]]:
    """(members, steps per member) of each population of a cell: its warm start, if any, and its main one."""
    per_epoch = max(1, dataset.x_train.shape[0] // cell.train.batch_size)
    populations = [(len(cell.members), per_epoch * cell.train.epochs)]
    if cell.warmstart is not None:
        starts = {(m.seed, m.init_scale) for m in cell.members}
        populations.append((len(starts), per_epoch * cell.warmstart["epochs"]))
    return populations


def estimate(jobs: list[tuple[Cell, object, int]], device: str) -> Estimate:
    """A lower bound of the training time of ``jobs`` ((cell, dataset, parameters per member)) on ``device``."""
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    seconds, total, largest = 0.0, 0, ("", 0, 0)
    for cell, dataset, parameters in jobs:
        step = max(FASTEST_STEP[kind], 6 * parameters * cell.train.batch_size / FAST_FLOPS[kind])
        for members, steps in cell_steps(cell, dataset):
            seconds += members * steps * step
            total += members * steps
            if members * steps > largest[1] * largest[2]:
                largest = (cell.id, members, steps)
    return Estimate(seconds, total, largest)


def check_length(spec: Spec, found: Estimate, max_days: float) -> None:
    """Refuse a run far beyond reason before it starts: its estimated time (a lower bound) over ``max_days``."""
    if found.seconds <= max_days * 86400:
        return
    raise SpecError(
        f"{spec.source}: this run would take {found.describe()}, more than --max-days {max_days:g}; shrink "
        "epochs, seeds, learning rates or grids in the spec (or run a smaller --size), or pass --max-days inf "
        "(or LOSSLAB_MAX_DAYS=inf) to run it anyway"
    )


def diverged_members(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per member (of each phase) that diverged at some evaluation: its loss, learning rate, scale, seed."""
    if "diverged" not in frame.columns or frame.empty:
        return frame.iloc[0:0]
    flagged = frame[frame["diverged"].fillna(False).astype(bool)]
    return flagged.drop_duplicates(subset=[k for k in ("phase", "member") if k in flagged.columns])


def describe_diverged(frame: pd.DataFrame, members: pd.DataFrame) -> str:
    """One line for a cell whose members diverged: how many, and which, grouped by loss, rate and scale."""
    groups = []
    keys = [k for k in ("phase", "loss", "loss_params", "lr", "init_scale") if k in members.columns]
    for values, rows in members.groupby(keys, sort=False, dropna=False):
        info = dict(zip(keys, values))
        params = info.get("loss_params")
        label = str(info.get("loss")) + ("" if params in ("{}", None) else f" {params}")
        seeds = sorted(rows["seed"].unique()) if "seed" in rows.columns else []
        shown = ", ".join(str(s) for s in seeds[:6]) + (f" and {len(seeds) - 6} more" if len(seeds) > 6 else "")
        scale = info.get("init_scale", 1)
        start = "" if scale == 1 else f" init_scale={scale:g}"
        warm = " (warm start)" if info.get("phase") == "warmstart" else ""
        groups.append(f"{label} lr={info.get('lr', float('nan')):g}{start}{warm} (seed {shown})")
    listed = "; ".join(groups[:4]) + (f"; and {len(groups) - 4} more group(s)" if len(groups) > 4 else "")
    total = frame.drop_duplicates(subset=[k for k in ("phase", "member") if k in frame.columns]).shape[0]
    return (
        f"{len(members)} of {total} members diverged (logits no longer finite): {listed}; their rows are kept and "
        "the report leaves them out when it chooses learning rates; lower those learning rates or initial scales"
    )


@contextmanager
def heartbeat(log, line: Callable[[float], str], every: float | None = None):
    """While the block runs, ``log(line(seconds so far))`` every ``every`` seconds (default ``HEARTBEAT_SECONDS``),
    from a background thread."""
    every = HEARTBEAT_SECONDS if every is None else every
    stop = threading.Event()
    started = time.perf_counter()

    def beat():
        while not stop.wait(every):
            log(line(time.perf_counter() - started))

    thread = threading.Thread(target=beat, name="losslab-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
