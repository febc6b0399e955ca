"""Result frames shaped like the trainer's, with numbers chosen by the test.

The report reads only these columns, so tests of its rules build the frames they need here instead of
training: every verdict can be driven each way. ``member_rows`` makes one member's step-0 and final rows
with every column the current trainer writes (validation metrics, temperature scaling, the calibration
errors, the bootstrap replicate lists, the reliability bins, the diverged flag, and each member's right and
wrong test examples as packed bits); ``results`` wraps rows with a manifest.

Right and wrong test examples: every cell has a fixed difficulty per test example (seeded by the cell's name);
a member with accuracy a gets right the round(a N) examples that are easiest for it (the difficulty plus a
little noise of its own), so members of one cell agree on most examples, as trained models do, and its
``test_accuracy`` is exactly its share of right examples.
"""

from __future__ import annotations

import itertools
import json
import zlib

import numpy as np
import pandas as pd

BINS = 15
BOOT = 200  # the trainer stores 500; fewer keep the tests fast and change nothing in the rules
CALIBRATION = {  # per loss: (NLL, ECE) raw and after temperature scaling
    "cross_entropy": ((0.30, 0.030), (0.28, 0.015)),
    "binary_cross_entropy": ((0.20, 0.020), (0.19, 0.010)),
    "mse": ((0.40, 0.060), (0.33, 0.020)),
    "square_logits": ((1.50, 0.770), (0.35, 0.020)),
    "focal": ((0.32, 0.050), (0.29, 0.015)),
    "label_smoothing_cross_entropy": ((0.35, 0.080), (0.29, 0.018)),
}
_SHARED = np.random.default_rng(123).standard_normal(BOOT)  # the same test resamples for every member
TEST_EXAMPLES = 500


def right_examples(cell: str, accuracy: float, member: int, n: int = TEST_EXAMPLES) -> np.ndarray:
    """Which of the cell's n test examples a member of this accuracy gets right (see the module docstring)."""
    difficulty = np.random.default_rng(zlib.crc32(f"difficulty:{cell}".encode())).random(n)
    own = np.random.default_rng(zlib.crc32(f"member:{cell}:{member}".encode())).random(n)
    order = np.argsort(difficulty + 0.15 * own, kind="stable")
    right = np.zeros(n, dtype=bool)
    right[order[: int(round(accuracy * n))]] = True
    return right


def _reliability(accuracy: float, ece: float, rng, n_test: int = 1000):
    """Equal-width bins: counts concentrated near the accuracy, each bin off the diagonal by about ``ece``."""
    centres = (np.arange(BINS) + 0.5) / BINS
    weights = np.exp(-((centres - accuracy) ** 2) / 0.02)
    counts = rng.multinomial(n_test, weights / weights.sum()).astype(float)
    confidence = np.where(counts > 0, centres, np.nan)
    acc = np.where(counts > 0, np.clip(centres - ece, 0, 1), np.nan)
    return counts.tolist(), confidence.tolist(), acc.tolist()


def member_rows(
    *,
    cell: str,
    loss: str,
    lr: float,
    seed: int,
    member: int,
    test_accuracy: float,
    val_accuracy: float | None = None,
    dataset: str = "digits",
    grid: str | None = None,
    num_classes: int = 10,
    model: str = "mlp",
    init_scale: float = 1.0,
    loss_params: dict | None = None,
    final_step: int = 100,
    dead_fraction: float = 0.0,
    start_accuracy: float = 0.1,
    grad_norm: float = 1.0,
    validation: bool = True,
    lists: bool = True,
    correct: bool = True,
    test_examples: int = TEST_EXAMPLES,
    diverged: bool = False,
    rng=None,
) -> list[dict]:
    """Step 0 and final rows of one member, with every column of the current trainer (``correct=False``: no
    right/wrong bits, as an older trainer wrote; ``diverged``: the member blew up, its final metrics NaN)."""
    rng = rng if rng is not None else np.random.default_rng(member)
    (nll, ece), (nll_ts, ece_ts) = CALIBRATION.get(loss, CALIBRATION["cross_entropy"])
    val = test_accuracy if val_accuracy is None else val_accuracy
    nan = float("nan")
    rows = []
    if correct:
        right = right_examples(cell, test_accuracy, member, test_examples)
        test_accuracy = float(right.mean())
    for step, acc in ((0, start_accuracy), (final_step, test_accuracy)):
        final = step == final_step
        row = {
            "cell": cell,
            "grid": grid or cell,
            "dataset": dataset,
            "num_classes": num_classes,
            "model": model,
            "phase": "main",
            "member": member,
            "loss": loss,
            "loss_params": json.dumps(loss_params or {}),
            "seed": seed,
            "lr": lr,
            "init_scale": init_scale,
            "step": step,
            "epoch": step / 10,
            "train_loss": 1.0,
            "train_accuracy": acc,
            "test_accuracy": acc,
            "test_nll": nll if final else 2.3,
            "test_brier": 0.5 * (1 - acc) + 0.05,
            "test_ece": ece if final else 0.05,
            "grad_norm": grad_norm,
            "dead_fraction": dead_fraction if step == 0 else 0.0,
            "seconds": float(step),
            "dataset_options": "{}",
            "diverged": bool(diverged and final),
            "test_correct": np.packbits(right).tobytes() if correct and final else None,
            "test_examples": test_examples if correct and final else float("nan"),
        }
        if diverged and final:
            row.update({"train_loss": float("nan"), "test_nll": float("nan"), "test_accuracy": 0.1})
            row.update({"val_accuracy": float("nan"), "val_nll": float("nan")})
        if validation:
            row.update(
                {
                    "val_accuracy": val if final else start_accuracy,
                    "val_nll": nll if final else 2.3,
                    "temperature": 1.4 if loss == "square_logits" else 1.1,
                    "test_nll_ts": nll_ts,
                    "test_brier_ts": 0.5 * (1 - acc) + 0.04,
                    "test_ece_ts": ece_ts,
                }
            )
        else:
            row.update({"val_accuracy": nan, "val_nll": nan, "temperature": nan, "test_nll_ts": nan})
            row.update({"test_brier_ts": nan, "test_ece_ts": nan})
        for name, value in (
            ("test_ece_adaptive", ece * 1.1),
            ("test_ece_classwise", ece / 3),
            ("test_mce", min(1.0, ece * 3)),
        ):
            row[name] = value
            row[f"{name}_ts"] = value / 2 if validation else nan
        if final and lists:
            member_noise = rng.standard_normal(BOOT) * 0.002
            for name, value, spread in (
                ("test_nll", nll, 0.02),
                ("test_ece", ece, 0.006),
                ("test_nll_ts", nll_ts, 0.02),
                ("test_ece_ts", ece_ts, 0.006),
            ):
                row[f"{name}_boot"] = np.clip(value + spread * _SHARED + member_noise, 0, None).tolist()
            for suffix, e in (("", ece), ("_ts", ece_ts)):
                counts, confidence, accuracy = _reliability(acc, e, rng)
                row[f"rel_count{suffix}"] = counts
                row[f"rel_confidence{suffix}"] = confidence
                row[f"rel_accuracy{suffix}"] = accuracy
        else:
            for name in ("test_nll_boot", "test_ece_boot", "test_nll_ts_boot", "test_ece_ts_boot"):
                row[name] = None
            for name in ("rel_count", "rel_confidence", "rel_accuracy"):
                row[name] = None
                row[f"{name}_ts"] = None
        rows.append(row)
    return rows


def grid_rows(
    cell: str,
    accuracies: dict,
    seeds: int = 6,
    noise: float = 0.004,
    start: int = 0,
    **common,
) -> list[dict]:
    """Rows of one cell. ``accuracies``: {loss: {lr: (val_accuracy, test_accuracy)}} (or a single accuracy for both).

    Each seed adds the same small offset to a member's validation and test accuracy (seeds differ, pairs share).
    """
    rng = np.random.default_rng(zlib.crc32(cell.encode()))
    rows = []
    member = start
    for loss, by_lr in accuracies.items():
        for (lr, value), seed in itertools.product(by_lr.items(), range(seeds)):
            val, test = value if isinstance(value, tuple) else (value, value)
            offset = rng.normal(0, noise)
            member += 1
            rows += member_rows(
                cell=cell,
                loss=loss,
                lr=lr,
                seed=seed,
                member=member,
                test_accuracy=float(np.clip(test + offset, 0, 1)),
                val_accuracy=float(np.clip(val + offset, 0, 1)),
                rng=rng,
                **common,
            )
    return rows


def results(spec: str, rows: list[dict], grids: list[dict], size: str = "full", train: dict | None = None):
    """(manifest, rows) as ``load_results`` returns them; ``grids``: the spec's [[grid]] tables (label, role, ...)."""
    manifest = {
        "spec": spec,
        "size": size,
        "spec_data": {"name": spec, "grid": grids, "train": train or {}},
        "cells": [{"id": g["label"], "members": 0} for g in grids],
        "environment": {"torch": "x", "device": "cpu", "git_commit": "0" * 10},
    }
    frame = pd.DataFrame(rows)
    frame.insert(0, "experiment", spec)
    return manifest, frame


def comparison(
    accuracies_by_cell: dict, seeds: int = 6, validation: bool = True, size: str = "full", lists: bool = True
):
    """A 'loss-comparison' run: {cell: {loss: {lr: (val, test)}}}."""
    rows, grids, start = [], [], 0
    for cell, accuracies in accuracies_by_cell.items():
        new = grid_rows(cell, accuracies, seeds=seeds, start=start, dataset=cell, validation=validation, lists=lists)
        start += len(new)
        rows += new
        grids.append({"label": cell, "role": "loss-comparison"})
    return results("comparison", rows, grids, size=size)
