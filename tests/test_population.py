"""Population training: member i equals the plain single run; determinism; metrics; datasets."""

from dataclasses import replace

import pandas as pd
import pytest
import torch

from losslab.data import Dataset, load_dataset
from losslab.experiments.store import load_results, save_result
from losslab.models import build_model
from losslab.train import Member, TrainConfig, train_population
from losslab.train.reference import train_reference


@pytest.fixture(scope="module")
def digits():
    # No validation split: the step counts and sizes below are those of digits' full 1,347 training examples.
    return load_dataset("digits", seed=0, validation=0)


def reference_layers(model):
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return [(l.weight.detach().T, l.bias.detach()[None]) for l in linears]


MIXED = [
    Member("cross_entropy", seed=0, lr=0.05),
    Member("mse", seed=1, lr=0.5, init_scale=10.0),
    Member("square_logits", seed=2, lr=0.02, loss_params={"k": 2.0, "M": 3.0}),
    Member("focal", seed=3, lr=0.05, loss_params={"gamma": 1.5}),
    Member("cross_entropy", seed=4, lr=0.1, init_scale=5.0),
    Member("label_smoothing_cross_entropy", seed=5, lr=0.05),
]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_every_member_equals_the_plain_single_run_float64(digits, optimizer):
    lr_scale = 1.0 if optimizer == "sgd" else 0.02
    members = [Member(m.loss, m.seed, m.lr * lr_scale, m.init_scale, m.loss_params) for m in MIXED]
    config = TrainConfig(model="mlp", hidden=[32, 16], epochs=2, batch_size=64, dtype="float64", optimizer=optimizer)
    result = train_population(digits, members, config, progress=False)
    final = result.frame[result.frame.step == result.frame.step.max()]
    for i, member in enumerate(members):
        model, accuracy = train_reference(digits, member, config)
        for (w, b), (w_ref, b_ref) in zip(result.model.member_layers(i), reference_layers(model)):
            torch.testing.assert_close(w, w_ref, rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(b, b_ref, rtol=1e-9, atol=1e-11)
        assert final[final.member == i].test_accuracy.item() == pytest.approx(accuracy, abs=1e-12)


def test_sigmoid_members_equal_the_plain_single_run(digits):
    members = [Member("mse", seed=0, lr=1.0, init_scale=8.0), Member("binary_cross_entropy", seed=1, lr=0.1)]
    config = TrainConfig(model="linear", epochs=3, batch_size=20, dtype="float64")
    binary = load_dataset("digits", classes=[0, 1])
    result = train_population(binary, members, config, progress=False)
    assert result.model.weights[-1].shape == (2, 1, 64)  # one logit per member
    for i, member in enumerate(members):
        model, _ = train_reference(binary, member, config, binary=True)
        ((w, b),) = result.model.member_layers(i)
        ((w_ref, b_ref),) = reference_layers(model)
        torch.testing.assert_close(w, w_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("matmul", ["torch", "numpy"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cnn_members_equal_the_plain_single_run(optimizer, matmul):
    # The CPU path (models/cnn_population.py: banded products, pooling before the bias, a hand-written backward) against
    # conv2d -> ReLU -> max_pool2d with autograd and torch.optim, member by member.
    images = tiny_images()
    members = [Member("cross_entropy", seed=0, lr=0.05), Member("mse", seed=1, lr=0.3, init_scale=4.0)]
    if optimizer == "adam":
        members = [Member(m.loss, m.seed, m.lr / 20, m.init_scale) for m in members]
    config = TrainConfig(model="cnn", epochs=2, batch_size=16, dtype="float64", optimizer=optimizer, matmul=matmul)
    result = train_population(images, members, config, progress=False)
    assert result.plan.matmul == matmul
    for i, member in enumerate(members):
        model, _ = train_reference(images, member, config)
        ours = [p[i] for p in result.model.params]
        theirs = [
            model.conv1.weight,
            model.conv1.bias,
            model.conv2.weight,
            model.conv2.bias,
            model.fc.weight.T,
            model.fc.bias,
        ]
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-12)


def test_float32_population_member_equals_that_member_alone(digits):
    # Batched matmuls over 6 members and over 1 pick different kernels, so float32 results start
    # ~1 ulp apart and the gap grows chaotically with training: compare over the first epoch (13
    # steps); the float64 tests above establish the exact equivalence.
    config = TrainConfig(model="mlp", hidden=[32], epochs=1, batch_size=100)
    together = train_population(digits, MIXED, config, progress=False)
    for i in range(len(MIXED)):
        alone = train_population(digits, [MIXED[i]], config, progress=False)
        for a, b in zip(together.model.params, alone.model.params):
            torch.testing.assert_close(a[i], b[0], rtol=1e-5, atol=1e-6)


def test_runs_are_bit_identical_on_cpu(digits):
    config = TrainConfig(model="mlp", hidden=[32], epochs=2, batch_size=50)
    first = train_population(digits, MIXED, config, progress=False)
    second = train_population(digits, MIXED, config, progress=False)
    for a, b in zip(first.model.params, second.model.params):
        assert torch.equal(a, b)
    columns = [c for c in first.frame.columns if c != "seconds"]
    pd.testing.assert_frame_equal(first.frame[columns], second.frame[columns])


def tiny_images() -> Dataset:
    gen = torch.Generator().manual_seed(0)
    return Dataset(
        "tiny-images",
        torch.randn(96, 1, 28, 28, generator=gen, dtype=torch.float64).float(),
        torch.randint(0, 3, (96,), generator=gen),
        torch.randn(20, 1, 28, 28, generator=gen).float(),
        torch.randint(0, 3, (20,), generator=gen),
        ("a", "b", "c"),
    )


@pytest.mark.parametrize("model", ["linear", "mlp", "resmlp"])
def test_the_number_of_workers_never_changes_a_result(digits, model):
    # Blocks are fixed by the plan before any runs, and each block computes the same thing whichever thread
    # runs it and whatever runs beside it: true by construction on any CPU and BLAS, so the worker count
    # cannot change a bit of any parameter or metric.
    results = [
        train_population(
            digits,
            MIXED,
            TrainConfig(
                model=model, hidden=[32], epochs=1, batch_size=32, eval_every_steps=20, block_size=2, workers=w
            ),
            progress=False,
        )
        for w in (1, 2, 3)
    ]
    columns = [c for c in results[0].frame.columns if c != "seconds"]
    for other in results[1:]:
        assert other.blocks == [2, 2, 2]
        for a, b in zip(results[0].model.params, other.model.params):
            assert torch.equal(a, b)
        pd.testing.assert_frame_equal(results[0].frame[columns], other.frame[columns])
    assert [r.workers for r in results] == [1, 2, 3]


def test_blocks_of_any_size_agree_to_rounding(digits):
    # The block size is part of the arithmetic (batched kernels may round differently by batch count),
    # so it is recorded with each result; in float64 every split agrees with one block to rounding.
    config = TrainConfig(hidden=[32], epochs=1, batch_size=32, dtype="float64")
    one = train_population(digits, MIXED, replace(config, block_size=6), progress=False)
    for size in (1, 4):
        split = train_population(digits, MIXED, replace(config, block_size=size), progress=False)
        assert split.blocks == ([1] * 6 if size == 1 else [3, 3])
        for a, b in zip(one.model.params, split.model.params):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_default_plan_blocks_are_cache_sized_and_spread_over_the_threads():
    from losslab.train.plan import default_plan

    data = load_dataset("blobs", num_classes=10, num_features=40)
    probe = build_model("mlp", data.input_shape, 10, [0], [1.0])
    plan = default_plan(TrainConfig(workers=2), 1024, probe.member_bytes(100), probe.splittable)
    sizes = {b.stop - b.start for b in plan.blocks(1024)}
    assert plan.workers == 2 and plan.threads_per_block == 1 and 8 <= min(sizes) and max(sizes) - min(sizes) <= 1
    assert max(sizes) * probe.member_bytes(100) <= 17 * 2**20  # cache-sized
    assert plan.blocks(1024)[-1].stop == 1024
    small = default_plan(TrainConfig(), 6, probe.member_bytes(100), True)
    threads = torch.get_num_threads()
    assert small.block_size == -(-6 // threads) and small.workers == min(threads, len(small.blocks(6)))
    cnn = default_plan(TrainConfig(model="cnn"), 6, 1000, False)
    assert (cnn.block_size, cnn.workers) == (6, 1)


def test_cnn_blocks_agree_to_rounding():
    # The block size is part of the plan's arithmetic (recorded with the results); in float64 any split of the
    # CNN's members agrees with one block to rounding.
    config = TrainConfig(model="cnn", epochs=1, batch_size=32, dtype="float64")
    one = train_population(tiny_images(), MIXED, config, progress=False)
    blocks = train_population(tiny_images(), MIXED, replace(config, block_size=2, workers=3), progress=False)
    assert blocks.blocks == [2, 2, 2]
    for a, b in zip(one.model.params, blocks.model.params):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_a_failing_block_stops_the_others_and_restores_torch_threads(digits, monkeypatch):
    from losslab.train import evaluation

    evaluate = evaluation.evaluate
    calls = []

    def breaks_for_the_second_block(model, *args, **kwargs):
        calls.append(model.members)
        if model.members == 1:  # blocks of 2 and 1 members: the small one fails at once
            raise RuntimeError("evaluation broke")
        return evaluate(model, *args, **kwargs)

    threads = torch.get_num_threads()
    monkeypatch.setattr(evaluation, "evaluate", breaks_for_the_second_block)
    config = TrainConfig(hidden=[8], epochs=200, eval_every_steps=1, block_size=2, workers=2)
    with pytest.raises(RuntimeError, match="evaluation broke"):
        train_population(digits, MIXED[:3], config, progress=False)
    # The healthy block stopped early rather than training its 2,600 steps to the end.
    assert calls.count(2) < 100
    assert torch.get_num_threads() == threads


def test_large_initial_logit_scale_puts_mse_in_the_dead_zone(digits):
    members = [
        Member("mse", seed=0, lr=0.5, init_scale=100.0),
        Member("cross_entropy", seed=0, lr=0.05, init_scale=100.0),
    ]
    result = train_population(digits, members, TrainConfig(model="mlp", hidden=[32], epochs=1), progress=False)
    start = result.frame[result.frame.step == 0].set_index("loss")
    assert start.loc["mse", "train_accuracy"] == start.loc["cross_entropy", "train_accuracy"] < 0.2  # same start
    assert start.loc["mse", "dead_fraction"] > 0.5  # confidently wrong and no gradient
    assert start.loc["cross_entropy", "dead_fraction"] == 0.0
    assert start.loc["cross_entropy", "grad_norm"] > 20 * start.loc["mse", "grad_norm"]


def test_result_rows_and_saving(digits, tmp_path):
    config = TrainConfig(model="linear", epochs=2, batch_size=100, eval_every_steps=5)
    result = train_population(digits, MIXED[:2], config, progress=False)
    steps = sorted(result.frame.step.unique())
    assert steps == [0, 5, 10, 15, 20, 25, 26]  # every 5 steps and the last step (13 steps an epoch)
    assert set(result.frame.columns) >= {
        "member",
        "loss",
        "seed",
        "lr",
        "init_scale",
        "step",
        "epoch",
        "train_loss",
        "test_accuracy",
        "test_nll",
        "test_brier",
        "test_ece",
        "grad_norm",
        "dead_fraction",
    }
    final = result.frame[result.frame.step == 26]
    others = result.frame[result.frame.step < 26]
    assert final.test_ece_boot.map(len).eq(500).all() and final.rel_count.map(sum).eq(len(digits.y_test)).all()
    assert others.test_ece_boot.isna().all() and others.rel_accuracy.isna().all()
    # digits as built here has no validation split: no temperature, no scaled metrics, said with NaN.
    assert result.frame.val_accuracy.isna().all() and result.frame.test_ece_ts.isna().all()
    assert result.frame.test_ece_ts_boot.isna().all()
    save_result(result, tmp_path / "saved", "demo")  # through the results store, list columns included
    manifest, back = load_results(tmp_path / "saved")
    assert len(back) == len(result.frame) and manifest["spec"] == "demo"
    assert back[back.step == 26].rel_count.iloc[0] == final.rel_count.iloc[0]
    assert back[back.step == 26].test_ece_boot.iloc[0] == final.test_ece_boot.iloc[0]
    assert manifest["cells"][0]["config"]["train"]["optimizer"] == "sgd"


@pytest.mark.parametrize(
    "members, config, message",
    [
        ([], TrainConfig(), r"members must list at least one Member"),
        ([Member("hinge")], TrainConfig(), r"unknown loss 'hinge'; valid losses:"),
        ([Member("mse", lr=-1)], TrainConfig(), r"member 0: lr must be a positive finite number, got -1"),
        ([Member("mse", init_scale=0)], TrainConfig(), r"member 0: init_scale must be a positive finite number, got 0"),
        ([Member("focal", loss_params={"k": 1})], TrainConfig(), r"loss 'focal' got unknown parameter\(s\) \['k'\]"),
        ([Member("mse")], TrainConfig(optimizer="lbfgs"), r"optimizer must be one of \['sgd', 'adam'\], got 'lbfgs'"),
        (
            [Member("mse")],
            TrainConfig(model="resnet"),
            r"unknown model 'resnet'; valid models: linear, mlp, cnn, cnn1d, resmlp",
        ),
        ([Member("mse")], TrainConfig(model="cnn"), r"model 'cnn' takes 28x28 images"),
        ([Member("mse")], TrainConfig(batch_size=5000), r"batch_size 5000 exceeds the 1347 training examples"),
        ([Member("mse")], TrainConfig(link="sigmoid"), r"link='sigmoid' needs a two-class dataset"),
        ([Member("mse")], TrainConfig(epochs=0), r"epochs must be a positive integer, got 0"),
        ([Member("mse")], TrainConfig(workers=0), r"workers must be a positive integer or None, got 0"),
    ],
)
def test_bad_configurations_fail_before_training(digits, members, config, message):
    with pytest.raises(ValueError, match=message):
        train_population(digits, members, config, progress=False)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_population_matches_cpu(digits):
    config = TrainConfig(model="mlp", hidden=[32], epochs=1, dtype="float64")
    cpu = train_population(digits, MIXED, config, progress=False)
    gpu = train_population(
        digits, MIXED, TrainConfig(model="mlp", hidden=[32], epochs=1, dtype="float64", device="cuda"), progress=False
    )
    for a, b in zip(cpu.model.params, gpu.model.params):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-9, atol=1e-11)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cuda_cnn_population_matches_cpu(optimizer):
    """The image CNN (grouped convolutions, one block) on the GPU equals the CPU in float64."""
    images = tiny_images()
    members = [Member("cross_entropy", seed=0, lr=0.05), Member("mse", seed=1, lr=0.3, init_scale=4.0)]
    if optimizer == "adam":
        members = [Member(m.loss, m.seed, m.lr / 20, m.init_scale) for m in members]
    config = TrainConfig(model="cnn", epochs=1, batch_size=32, dtype="float64", optimizer=optimizer)
    cpu = train_population(images, members, config, progress=False)
    gpu = train_population(images, members, replace(config, device="cuda"), progress=False)
    for a, b in zip(cpu.model.params, gpu.model.params):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-9, atol=1e-11)


def test_cuda_request_without_cuda_is_a_clear_error(digits):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=r"device 'cuda' requested but CUDA is not available here"):
        train_population(digits, MIXED[:1], TrainConfig(device="cuda"), progress=False)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_numpy_products_equal_the_plain_loop_float64(digits, model):
    # numpy's BLAS computes the same products in the same memory: member i still equals the plain loop.
    config = TrainConfig(model=model, hidden=[32, 16], epochs=2, batch_size=64, dtype="float64", matmul="numpy")
    result = train_population(digits, MIXED, config, progress=False)
    assert result.plan.matmul == "numpy"
    for i, member in enumerate(MIXED):
        plain, _ = train_reference(digits, member, config)
        for (w, b), (w_ref, b_ref) in zip(result.model.member_layers(i), reference_layers(plain)):
            torch.testing.assert_close(w, w_ref, rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(b, b_ref, rtol=1e-9, atol=1e-11)


def test_both_matmul_libraries_agree_in_float32(digits):
    config = TrainConfig(hidden=[32], epochs=1, batch_size=100, block_size=3)
    torch_run = train_population(digits, MIXED, replace(config, matmul="torch"), progress=False)
    numpy_run = train_population(digits, MIXED, replace(config, matmul="numpy"), progress=False)
    for a, b in zip(torch_run.model.params, numpy_run.model.params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
