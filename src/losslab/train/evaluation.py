"""The dataset on the training device, and the per-member metrics of every evaluation.

``prepare`` puts the dataset in the forms the training steps and the evaluations read, once per
population, shared read-only by every block. ``evaluate`` computes each member's metrics on a fixed
subset of the training set (its own loss, gradient norm, dead fraction), on the validation split
(accuracy, NLL) and on the test set (accuracy, NLL, Brier, 15-bin ECE). The final evaluation adds the
temperature that minimises each member's validation NLL, the test metrics after scaling by it, the
adaptive and classwise ECE and the MCE (raw and scaled), and, as list columns, bootstrap replicates of
the test NLL and ECE and the reliability-diagram bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from losslab.core.links import max_over_classes
from losslab.data import Dataset
from losslab.train import metrics
from losslab.train.config import TrainConfig
from losslab.train.loss_groups import LossGroups


@dataclass(frozen=True)
class PreparedData:
    """The dataset on the training device: inputs flattened to [N, features], targets in the losses' form."""

    x_train: torch.Tensor  # [N, features]
    t_train: torch.Tensor  # targets: [N, K] probabilities, class-major, or [N] 0/1 floats for sigmoid models
    x_eval: torch.Tensor  # the training examples the train-set metrics use, and their labels and targets
    y_eval: torch.Tensor
    t_eval: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor  # the validation split ([0, features] when the dataset has none)
    y_val: torch.Tensor
    bootstrap: torch.Tensor  # [replicates, n_test] resample counts, shared by every member (metrics.bootstrap_counts)


def _flat(x: torch.Tensor, device, dtype) -> torch.Tensor:
    # The MLP reads feature vectors; other models reshape them to their input shape themselves.
    return x.reshape(x.shape[0], math.prod(x.shape[1:])).to(device, dtype)


def prepare(dataset: Dataset, binary: bool, config: TrainConfig) -> PreparedData:
    dtype, device = config.torch_dtype, torch.device(config.device)
    n_train = dataset.x_train.shape[0]
    x_train = _flat(dataset.x_train, device, dtype)
    y_train, y_test = dataset.y_train.to(device), dataset.y_test.to(device)
    # Targets in the form the losses take: probabilities [N, K], or 0/1 floats [N] for sigmoid models.
    # Stored class-major ([K, N] memory seen as [N, K]) like the model's logits: elementwise ops on two
    # tensors of different layouts run several times slower on CPU.
    if binary:
        t_train = y_train.to(dtype)
    else:
        t_train = torch.nn.functional.one_hot(y_train, dataset.num_classes).to(dtype).T.contiguous().T
    limit = config.train_eval_examples
    # The evenly spaced rows are computed on the CPU so that every device evaluates the same examples.
    eval_rows = (
        torch.linspace(0, n_train - 1, limit).long() if limit is not None and limit < n_train else torch.arange(n_train)
    ).to(device)
    t_eval = t_train[eval_rows] if binary else t_train.T[:, eval_rows].contiguous().T  # class-major like logits
    x_test = _flat(dataset.x_test, device, dtype)
    x_val = getattr(dataset, "x_val", None)
    if x_val is None:  # a Dataset without a validation split
        x_val, y_val = dataset.x_train[:0], dataset.y_train[:0]
    else:
        y_val = dataset.y_val
    return PreparedData(
        x_train,
        t_train,
        x_train[eval_rows],
        y_train[eval_rows],
        t_eval,
        x_test,
        y_test,
        _flat(x_val, device, dtype),
        y_val.to(device),
        metrics.bootstrap_counts(len(y_test), device=device),
    )


NAN = float("nan")

#: The list columns only the final evaluation fills (None on the other rows): bootstrap replicates of the test
#: NLL and ECE, the reliability bins (raw and temperature-scaled), and ``test_correct``, each member's right and
#: wrong test examples packed as bits (``metrics.packed_correct``), with ``test_examples``, how many there are.
FINAL_ONLY = (
    *(
        name
        for suffix in ("", "_ts")
        for name in (
            f"test_nll{suffix}_boot",
            f"test_ece{suffix}_boot",
            f"rel_count{suffix}",
            f"rel_confidence{suffix}",
            f"rel_accuracy{suffix}",
        )
    ),
    "test_correct",
    "test_examples",
)


@torch.no_grad()
def evaluate(
    model, groups: LossGroups, data: PreparedData, binary: bool, config: TrainConfig, final: bool = False
) -> dict:
    """Metrics per member ([M] tensors; with ``final``, also the list columns): every metric declared in
    ``metrics.METRICS`` (computed from its declaration), and ``diverged``, whether a member's logits are
    no longer finite (training blew up: its metrics are NaN or meaningless from then on)."""
    y_train, t_train = data.y_eval, data.t_eval
    squeeze = (lambda z: z.squeeze(-1)) if binary else (lambda z: z)
    z_train = squeeze(logits_in_chunks(model, data.x_eval, config))
    logits = {"test": (squeeze(logits_in_chunks(model, data.x_test, config)), data.y_test)}
    if len(data.y_val):
        logits["val"] = (squeeze(logits_in_chunks(model, data.x_val, config)), data.y_val)
    members = z_train.shape[0]
    targets = t_train.expand(members, *t_train.shape)
    own_loss = groups.values(z_train, targets)  # [M, N] each member's own training loss
    grad = groups.gradient(z_train, targets)
    grad_norm = grad.abs() if binary else grad.norm(dim=-1)
    wrong = ((z_train > 0).long() if binary else max_over_classes(z_train)[1]) != y_train
    finite = torch.isfinite(z_train).flatten(1).all(-1) & torch.isfinite(logits["test"][0]).flatten(1).all(-1)
    nan = torch.full((members,), NAN, dtype=torch.float64, device=z_train.device)
    stats = {
        "train_loss": own_loss.double().mean(-1),
        "train_accuracy": metrics.accuracy(z_train, y_train),
        "grad_norm": grad_norm.double().mean(-1),
        "dead_fraction": (wrong & (grad_norm < config.dead_epsilon)).double().mean(-1),
        "diverged": ~finite,
    }
    # Temperature scaling and the other calibration measures describe the trained members: they are computed
    # at the final evaluation only (NaN on the others), which keeps frequent evaluations cheap.
    temperature = metrics.fit_temperature(*logits["val"]) if final and "val" in logits else None
    stats["temperature"] = temperature if temperature is not None else nan
    for m in metrics.METRICS.values():
        if m.fn is None:
            continue
        view = logits.get(m.split)
        compute = view is not None and (final or not m.final_only)
        stats[m.name] = m.fn(*view) if compute else nan
        if m.scaled:
            # Scaling never changes the predicted class, so accuracy has no scaled twin.
            stats[f"{m.name}_ts"] = (
                m.fn(metrics.scaled(view[0], temperature), view[1]) if compute and (temperature is not None) else nan
            )
    if not final:
        return stats
    z_test, y_test = logits["test"]
    stats["test_correct"] = metrics.packed_correct(z_test, y_test)
    stats["test_examples"] = torch.full((members,), len(y_test), dtype=torch.long)  # unpacks test_correct
    views = [("", z_test)] + ([("_ts", metrics.scaled(z_test, temperature))] if temperature is not None else [])
    for suffix, z in views:
        nll, ece = metrics.bootstrap_nll_and_ece(z, y_test, data.bootstrap)
        stats[f"test_nll{suffix}_boot"], stats[f"test_ece{suffix}_boot"] = nll, ece
        for key, value in metrics.reliability_bins(z, y_test).items():
            stats[f"rel_{key}{suffix}"] = value
    return stats


def logits_in_chunks(model, x: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Every member's logits [M, N, K] on the shared inputs ``x`` [N, features], in memory-bounded chunks."""
    members = model.members
    width = max(p.shape[-1] for p in model.params)
    chunk = max(1, config.eval_chunk_elements // max(1, members * max(width, x.shape[-1])))
    parts = [model.forward(x[i : i + chunk].unsqueeze(0).expand(members, -1, -1)) for i in range(0, x.shape[0], chunk)]
    # Concatenate class-major ([M, K, N] memory) as the MLP produces it: softmax over K is then fast.
    return torch.cat([p.transpose(1, 2) for p in parts], dim=2).transpose(1, 2)
