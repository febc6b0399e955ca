"""Models given as torch.nn.Module factories: trained as populations through torch.func, equal to the plain loop."""

import math

import pytest
import torch
from torch import nn

from losslab.data import Dataset, load_dataset
from losslab.models import get_model, register_model
from losslab.train import Member, TrainConfig, train_population
from losslab.train.reference import train_reference


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


class TinyNet(nn.Module):
    """A user's model: LayerNorm, GELU and a skip connection, nothing losslab knows about."""

    def __init__(self, features, classes):
        super().__init__()
        self.norm = nn.LayerNorm(features)
        self.hidden = nn.Linear(features, 16)
        self.skip = nn.Linear(features, 16, bias=False)
        self.out = nn.Linear(16, classes)

    def forward(self, x):
        x = self.norm(x.flatten(1))
        return self.out(nn.functional.gelu(self.hidden(x)) + self.skip(x))


@pytest.fixture
def user_model(clean_registries):
    name = "test-tiny-net"
    register_model(name, lambda shape, k: TinyNet(math.prod(shape), k), summary="a test model", replace=True)
    return name


MEMBERS = [
    Member("cross_entropy", seed=0, lr=0.05),
    Member("mse", seed=1, lr=0.5, init_scale=5.0),
    Member("square_logits", seed=2, lr=0.02, loss_params={"k": 2.0, "M": 3.0}),
    Member("focal", seed=3, lr=0.05, loss_params={"gamma": 1.5}),
]


@pytest.mark.parametrize("matmul", ["vmap", "loop"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_user_module_members_equal_the_plain_loop_float64(digits, user_model, optimizer, matmul):
    scale = 1.0 if optimizer == "sgd" else 0.1
    members = [Member(m.loss, m.seed, m.lr * scale, m.init_scale, m.loss_params) for m in MEMBERS]
    # Adam on the scaled-up MSE member is chaotic: rounding differences of 1e-16 (vmap sums the batch in
    # another order) reach 1e-6 after two epochs and O(1) after four; one epoch stays at 1e-10.
    epochs = 2 if optimizer == "sgd" else 1
    config = TrainConfig(
        model=user_model, epochs=epochs, batch_size=64, dtype="float64", optimizer=optimizer, matmul=matmul
    )
    result = train_population(digits, members, config, progress=False)
    assert result.plan.matmul == matmul  # vmap over the members, or each member's plain module in turn
    final = result.frame[result.frame.step == result.frame.step.max()]
    for i, member in enumerate(members):
        plain, accuracy = train_reference(digits, member, config)
        ours = result.model.member_state(i)
        for name, value in plain.state_dict().items():
            torch.testing.assert_close(ours[name], value, rtol=1e-9, atol=1e-11)
        assert final[final.member == i].test_accuracy.item() == pytest.approx(accuracy, abs=1e-12)


@pytest.mark.parametrize(
    "model, matmul, optimizer",
    [
        ("resmlp", "vmap", "adam"),
        ("resmlp", "loop", "adam"),
        ("cnn1d", "torch", "adam"),
        ("cnn1d", "numpy", "adam"),
        ("cnn1d", "torch", "sgd"),
        ("cnn1d", "numpy", "sgd"),
    ],
)
def test_mnist1d_reference_models_equal_the_plain_loop_float64(model, matmul, optimizer):
    # cnn1d on the CPU is cnn1d_population's hand-written path (torch's or numpy's products); resmlp an nn.Module.
    data = load_dataset("mnist1d")
    small = Dataset(
        "mnist1d-small", data.x_train[:300], data.y_train[:300], data.x_test[:100], data.y_test[:100], data.class_names
    )
    lr = 0.01 if optimizer == "adam" else 0.1
    members = [Member("cross_entropy", seed=0, lr=lr), Member("mse", seed=1, lr=lr, init_scale=3.0)]
    config = TrainConfig(
        model=model, hidden=[32, 32], epochs=2, batch_size=50, dtype="float64", optimizer=optimizer, matmul=matmul
    )
    result = train_population(small, members, config, progress=False)
    assert result.plan.matmul == matmul
    for i, member in enumerate(members):
        plain, _ = train_reference(small, member, config)
        ours = result.model.member_state(i)
        for name, value in plain.state_dict().items():
            torch.testing.assert_close(ours[name], value, rtol=1e-9, atol=1e-11)


def test_cnn1d_is_the_reference_architecture():
    module = get_model("cnn1d").module_factory((40,), 10)
    assert sum(p.numel() for p in module.parameters()) == 5210  # as the MNIST-1D reference's ConvBase
    assert module.linear.in_features == 125
    assert module(torch.zeros(3, 40)).shape == (3, 10)
    resmlp = get_model("resmlp").module_factory((40,), 10)
    assert [m.weight.shape for m in resmlp.modules() if isinstance(m, nn.Linear)] == [(100, 40), (100, 100), (10, 100)]


def test_member_initialisation_follows_the_seed_and_scale(user_model, digits):
    config = TrainConfig(model=user_model, epochs=1)
    one = train_population(digits, [Member("cross_entropy", seed=7, lr=1e-9)], config, progress=False)
    again = train_population(
        digits,
        [Member("mse", seed=3), Member("cross_entropy", seed=7, lr=1e-9, init_scale=10.0)],
        config,
        progress=False,
    )
    a, b = one.model.member_state(0), again.model.member_state(1)
    torch.testing.assert_close(b["hidden.weight"], a["hidden.weight"], rtol=1e-5, atol=1e-6)  # same seed
    torch.testing.assert_close(b["out.weight"], 10 * a["out.weight"], rtol=1e-4, atol=1e-6)  # last layer scaled
    assert not torch.allclose(again.model.member_state(0)["hidden.weight"], a["hidden.weight"])


def test_threads_and_blocks_do_not_mix_up_user_members(user_model, digits):
    # functional_call swaps tensors into the module object: blocks on two threads must not share one.
    config = TrainConfig(model=user_model, epochs=1, dtype="float64", block_size=2, workers=2)
    split = train_population(digits, MEMBERS, config, progress=False)
    whole = train_population(digits, MEMBERS, TrainConfig(model=user_model, epochs=1, dtype="float64"), progress=False)
    for a, b in zip(split.model.params, whole.model.params):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


class WithBatchNorm(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.layer = nn.Linear(features, 8)
        self.bn = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, classes)

    def forward(self, x):
        return self.out(self.bn(self.layer(x.flatten(1))))


@pytest.mark.parametrize(
    "factory, message",
    [
        (
            lambda s, k: WithBatchNorm(math.prod(s), k),
            r"model 'bad': layer 'bn' \(BatchNorm1d\) updates its running statistics.*GroupNorm",
        ),
        (
            lambda s, k: nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(math.prod(s), k)),
            r"model 'bad': layer '1' \(Dropout, p=0.5\) draws its masks from the global random generator",
        ),
        (
            lambda s, k: nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), 3)),
            r"model 'bad' returned \[2, 3\] .* \[2, 10\]",
        ),
        (lambda s: nn.Linear(4, 2), r"model 'bad': factory\(input_shape=\(64,\), num_classes=10\) failed: TypeError"),
        (lambda s, k: "not a module", r"model 'bad': the factory must return a torch.nn.Module, got str"),
        (lambda s, k: nn.ReLU(), r"model 'bad' has no parameters to train"),
        (lambda s, k: nn.Linear(7, k), r"model 'bad' failed on a batch of shape \[2, 64\]: RuntimeError"),
    ],
)
def test_what_vmap_cannot_train_is_a_clear_error(digits, factory, message, clean_registries):
    register_model("bad", factory, replace=True)
    with pytest.raises((ValueError, TypeError), match=message):
        train_population(digits, MEMBERS[:1], TrainConfig(model="bad", epochs=1), progress=False)


def test_registering_models_checks_names():
    with pytest.raises(
        ValueError, match=r"model name '../x' is not valid; use letters, digits, '-' and '_', starting with a letter"
    ):
        register_model("../x", lambda s, k: nn.Linear(1, k))
    with pytest.raises(
        ValueError,
        match=r"model 'mlp' is already registered \(built-in\); choose another name, or pass replace=True to replace it",
    ):
        register_model("mlp", lambda s, k: nn.Linear(1, k))
    with pytest.raises(TypeError, match=r"model 'x': factory must be callable"):
        register_model("x", 3)


def test_the_plan_chooses_between_vmap_and_plain_modules_and_rejects_other_libraries(digits, user_model, monkeypatch):
    from losslab.train import plan as plans

    monkeypatch.setenv("LOSSLAB_CACHE_DIR", str(__import__("tempfile").mkdtemp()))
    seen = []

    def loop_faster(candidate, warmup, steps):  # plain modules on worker threads twice as fast as vmap
        seen.append(candidate.matmul)
        members = sum(b.stop - b.start for b in candidate.blocks(64)[: candidate.workers])
        return steps * members / 1000 * (0.5 if candidate.matmul == "loop" else 1.0)

    chosen, _ = plans.choose_plan(TrainConfig(), 64, 10_000, True, ("vmap", "loop"), 10_000, {"m": 1}, loop_faster)
    assert chosen.matmul == "loop" and set(seen) == {"vmap", "loop"}
    default = plans.default_plan(TrainConfig(), 64, 10_000, True, ("vmap", "loop"))
    assert default.matmul == "vmap"
    with pytest.raises(ValueError, match=r"matmul 'numpy' does not apply to model 'test-tiny-net'; use one of"):
        train_population(digits, MEMBERS, TrainConfig(model=user_model, epochs=1, matmul="numpy"), progress=False)
