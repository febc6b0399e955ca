"""Training precision (fp32, tf32 on CUDA, bf16 autocast) and blocks sized to a memory limit."""

from dataclasses import replace

import pytest
import torch

from losslab.data import load_dataset
from losslab.train import Member, TrainConfig, train_population

MEMBERS = [Member("cross_entropy", seed=s, lr=0.1) for s in range(3)] + [
    Member("mse", seed=s, lr=0.5) for s in range(3)
]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("model", ["mlp", "resmlp"])
def test_bf16_training_stays_within_tolerance_of_fp32(digits, model):
    # bfloat16 keeps 8 mantissa bits: the products are rounded at 0.4%, so trajectories drift apart like runs
    # of different seeds (whose accuracies spread by 1-3 points here), but what the run measures must not move
    # more than that: final test accuracy within 2 points on average and 5 points for any member.
    config = TrainConfig(model=model, hidden=[64, 64], epochs=5, batch_size=64)
    fp32 = train_population(digits, MEMBERS, config, progress=False)
    bf16 = train_population(digits, MEMBERS, replace(config, precision="bf16"), progress=False)
    last = lambda r: r.frame[r.frame.step == r.frame.step.max()].set_index("member").test_accuracy  # noqa: E731
    gap = (last(bf16) - last(fp32)).abs()
    assert gap.mean() <= 0.02 and gap.max() <= 0.05
    assert last(bf16).min() > 0.85
    assert bf16.plan.matmul != "numpy"  # torch's products (or, for resmlp, an nn.Module: vmap or a loop of modules)


def test_bad_precisions_are_clear_errors(digits):
    with pytest.raises(ValueError, match=r"precision 'tf32' applies to CUDA matmuls; on the CPU use 'fp32' or 'bf16'"):
        train_population(digits, MEMBERS, TrainConfig(precision="tf32"), progress=False)
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'tf32', 'bf16'\], got 'fp16'"):
        train_population(digits, MEMBERS, TrainConfig(precision="fp16"), progress=False)
    with pytest.raises(ValueError, match=r"precision 'bf16' needs dtype 'float32', got 'float64'"):
        train_population(digits, MEMBERS, TrainConfig(precision="bf16", dtype="float64"), progress=False)
    with pytest.raises(ValueError, match=r"precision 'bf16' needs torch's products"):
        train_population(digits, MEMBERS, TrainConfig(precision="bf16", matmul="numpy"), progress=False)


@pytest.mark.parametrize("model", ["mlp", "cnn1d-digits"])
def test_a_memory_limit_splits_the_population_into_blocks_that_fit(digits, model):
    if model == "cnn1d-digits":  # an nn.Module model: its block size comes from measured activation sizes
        model, data = "cnn1d", load_dataset("mnist1d")
        data = type(data)(
            "small", data.x_train[:400], data.y_train[:400], data.x_test[:100], data.y_test[:100], data.class_names
        )
    else:
        data = digits
    config = TrainConfig(model=model, hidden=[32], epochs=1, batch_size=50, dtype="float64")
    whole = train_population(data, MEMBERS, config, progress=False)
    per_member = whole.model.member_bytes(50)
    limited = train_population(data, MEMBERS, replace(config, memory_limit=2 * per_member + 1), progress=False)
    assert limited.plan.block_size == 2 and limited.blocks == [2, 2, 2]
    for a, b in zip(whole.model.params, limited.model.params):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("model", ["linear", "mlp", "resmlp", "cnn1d"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cuda_every_model_optimizer_and_precision_matches_the_cpu(model, optimizer, precision):
    data = load_dataset("mnist1d")
    members = [Member("cross_entropy", seed=s, lr=0.01 if optimizer == "adam" else 0.1) for s in range(4)]
    members += [Member("mse", seed=s, lr=0.01 if optimizer == "adam" else 0.3) for s in range(4)]
    config = TrainConfig(model=model, hidden=[64, 64], epochs=3, optimizer=optimizer)
    cpu = train_population(data, members, config, progress=False)
    gpu = train_population(data, members, replace(config, device="cuda", precision=precision), progress=False)
    last = lambda r: r.frame[r.frame.step == r.frame.step.max()].set_index("member").test_accuracy  # noqa: E731
    tolerance = 0.01 if precision == "fp32" else 0.03
    assert (last(gpu) - last(cpu)).abs().mean() < tolerance


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_population_larger_than_the_memory_limit_is_split_not_crashed():
    data = load_dataset("mnist1d")
    members = [Member("cross_entropy", seed=s) for s in range(64)]
    config = TrainConfig(hidden=[100, 100], epochs=1, device="cuda", memory_limit=8 * 2**20)
    result = train_population(data, members, config, progress=False)
    assert len(result.blocks) > 1 and result.frame.test_accuracy.notna().all()
