"""register_loss, the values/gradient accessors (batched autograd where no closed form), squentropy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losslab
from losslab.core import LOSSES, cross_entropy, get_loss, make_loss, register_loss, squentropy
from losslab.core.losses import squentropy_grad, squentropy_values


@pytest.fixture
def registry(clean_registries):
    return LOSSES


def ce_values(z, y):
    return -(y * torch.log_softmax(z, dim=-1)).sum(dim=-1)


def tempered(z, y, t=2.0):
    return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)


# --- squentropy -------------------------------------------------------------------------------------


def test_squentropy_is_cross_entropy_plus_the_mean_squared_incorrect_logit():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (12,), generator=gen)
    incorrect = z.square().sum(-1) - z.gather(1, y[:, None]).squeeze(1).square()
    expected = F.cross_entropy(z, y, reduction="none") + incorrect / 4  # 1/(K-1) = 1/4
    torch.testing.assert_close(squentropy(z, y, reduction="none"), expected)
    # Probability targets weight class i by 1 - y_i: linear in y, so L(z, q) = E_{c~q} L(z, e_c).
    q = torch.softmax(torch.randn(12, 5, generator=gen, dtype=torch.float64), -1)
    per_class = torch.stack([squentropy(z, torch.full((12,), c), reduction="none") for c in range(5)], -1)
    torch.testing.assert_close(squentropy(z, q, reduction="none"), (q * per_class).sum(-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_squentropy_closed_form_gradient_matches_autograd_at_random_and_extreme_logits(dtype):
    gen = torch.Generator().manual_seed(1)
    extreme = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
    for z in (torch.randn(20, 3, generator=gen, dtype=dtype) * 10, extreme):
        y = F.one_hot(torch.randint(0, 3, (z.shape[0],), generator=gen), 3).to(dtype)
        leaf = z.clone().requires_grad_(True)
        (auto,) = torch.autograd.grad(squentropy_values(leaf, y).sum(), leaf)
        closed = squentropy_grad(z, y)
        assert torch.isfinite(closed).all() and torch.isfinite(squentropy_values(z, y)).all()
        if dtype == torch.float64:
            torch.testing.assert_close(closed, auto, rtol=1e-12, atol=1e-12)
    # Confidently wrong by 1e4: cross-entropy's p - y plus the pull 2 z_i / (K - 1) on the wrong logit.
    z = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(
        squentropy.gradient(z, torch.tensor([1])), torch.tensor([[1.0 + 1e4, -1.0, 0.0]]).double()
    )


# --- register_loss and the accessors ------------------------------------------------------------------


def test_a_values_only_loss_gets_a_batched_autograd_gradient(registry):
    calls = []

    def counted(z, y):
        calls.append(tuple(z.shape))
        return ce_values(z, y)

    loss = register_loss("my_ce", values=counted, summary="cross-entropy written by hand")
    assert LOSSES["my_ce"] is loss and losslab.register_loss is register_loss
    assert loss.grad is None and not loss.has_closed_form()
    gen = torch.Generator().manual_seed(2)
    for dtype in (torch.float32, torch.float64):
        z = torch.randn(3, 5, 4, generator=gen, dtype=dtype) * 4  # [members, batch, K]
        y = F.one_hot(torch.randint(0, 4, (3, 5), generator=gen), 4).to(dtype)
        calls.clear()
        with torch.no_grad():  # as in an evaluation loop
            grad = loss.logit_gradient_fn()(z, y)
        assert calls == [(3, 5, 4)]  # one call over every member and example: no Python loop
        torch.testing.assert_close(grad, torch.softmax(z, -1) - y)  # cross-entropy's p - y
        assert grad.dtype == dtype and not grad.requires_grad
    # The validated API uses the same accessors.
    z = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (6,), generator=gen)
    torch.testing.assert_close(loss(z, labels), cross_entropy(z, labels))
    torch.testing.assert_close(loss.gradient(z, labels), cross_entropy.gradient(z, labels))
    torch.testing.assert_close(loss.values_fn()(z, F.one_hot(labels, 4).double()), cross_entropy(z, labels, "none"))


def test_closed_forms_are_used_where_given_and_binary_losses_work_too(registry):
    def bce(z, y):
        return -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z))

    loss = register_loss("my_bce", binary_values=bce)
    z = torch.linspace(-30, 30, 13, dtype=torch.float64)
    y = (torch.arange(13) % 2).double()
    torch.testing.assert_close(loss.logit_gradient_fn(binary=True)(z, y), torch.sigmoid(z) - y)
    assert loss.accepts_binary and not loss.accepts_multiclass
    with pytest.raises(ValueError, match=r"loss 'my_bce' has no multiclass form; use it on a one-logit"):
        loss.values_fn()
    assert get_loss("cross_entropy").logit_gradient_fn() is get_loss("cross_entropy").logit_gradient_fn()
    assert get_loss("mse").raw_gradient_fn(binary=True).__name__ == "binary_mse_grad"


def test_parameters_come_from_the_keyword_defaults(registry):
    loss = register_loss("tempered", values=tempered)
    assert loss.defaults == {"t": 2.0}
    z, y = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64), torch.tensor([0])
    torch.testing.assert_close(loss(z, y, t=1.0), cross_entropy(z, y))
    torch.testing.assert_close(loss(z, y), cross_entropy(z / 2, y))
    with pytest.raises(
        ValueError, match=r"loss 'tempered' got unknown parameter\(s\) \['gamma'\]; valid parameters: \['t'\]"
    ):
        loss(z, y, gamma=1.0)
    explicit = make_loss("explicit", values=tempered, defaults={"t": 3.0})
    torch.testing.assert_close(explicit(z, y), cross_entropy(z / 3, y))
    assert "explicit" not in LOSSES  # make_loss does not register


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "1st"}, r"loss name '1st' is not valid; use letters, digits, '-' and '_', starting with a letter"),
        (
            {"name": "cross_entropy"},
            r"loss 'cross_entropy' is already registered \(built-in\); choose another name, or pass replace=True",
        ),
        ({"values": None}, r"loss 'x': give values= \(multiclass, z \[\.\.\., K\]\) or binary_values="),
        ({"values": 3}, r"loss 'x': values must be a function f\(z, y, \*\*params\), got int"),
        (
            {"values": None, "binary_values": ce_values, "grad": ce_values},
            r"loss 'x': grad= is the gradient of values=, which is missing",
        ),
        (
            {"values": lambda z: z},
            r"loss 'x': values '<lambda>' \(.*\) has signature \(z\), which cannot be called as \(z, y\)",
        ),
        (
            {"values": tempered, "defaults": {"gamma": 1.0}},
            r"loss 'x': values 'tempered' .* cannot be called as \(z, y, gamma=\.\.\.\)",
        ),
        ({"defaults": [1]}, r"loss 'x': defaults must be a dict of parameter names to values, got \[1\]"),
    ],
)
def test_register_loss_rejects_bad_input_in_one_line(registry, kwargs, message):
    args = {"name": "x", "values": ce_values, **kwargs}
    name = args.pop("name")
    with pytest.raises(ValueError, match=message) as info:
        register_loss(name, **args)
    assert "\n" not in str(info.value)


def test_register_loss_takes_the_functions_positionally_and_replace_replaces(registry):
    first = register_loss("mine", ce_values)  # values positionally, as register_dataset takes its loader
    assert first.values is ce_values and first.grad is None
    with_grad = register_loss("mine2", ce_values, lambda z, y: torch.softmax(z, -1) - y)
    assert with_grad.has_closed_form()
    second = register_loss("mine", values=tempered, replace=True)
    assert LOSSES["mine"] is second is not first
    with pytest.raises(TypeError):  # replace is keyword-only: a fifth positional argument is a mistake
        register_loss("mine3", ce_values, None, None, None, True)


def test_declared_loss_parameters_are_checked_with_their_default_and_meaning(registry):
    from losslab.params import Interval, Param

    t = Param("t", Interval(float, 0, closed="neither"), 3.0, "temperature of the softmax")
    loss = register_loss("tempered_declared", tempered, params=[t])
    assert loss.defaults == {"t": 3.0}  # the declaration's default, not the function's 2.0
    assert loss.resolve_params({}) == {"t": 3.0}
    with pytest.raises(ValueError, match=r"^t must be a positive finite number, got -1$"):
        loss.resolve_params({"t": -1})
    with pytest.raises(ValueError, match=r"^t must be a positive finite number, got True$"):
        loss.resolve_params({"t": True})
    kept = register_loss("tempered_kept", tempered, params=[Param("t", Interval(float, 0, closed="neither"))])
    assert kept.defaults == {"t": 2.0}  # no default declared: the function's keyword default
    with pytest.raises(ValueError, match=r"loss 'x': params must be a list of losslab.params.Param declarations"):
        register_loss("x", tempered, params={"t": 1.0})
    with pytest.raises(ValueError, match=r"loss 'x': parameter\(s\) \['u'\] have no default"):
        register_loss("x", tempered, params=[Param("u", Interval(float))])


def bad_shape(z, y):
    return (z - y).square().mean()  # averages over the batch: one number, not one per example


def not_a_tensor(z, y):
    return (z - y).square().sum(-1).numpy()


def nan_values(z, y):
    return torch.log(-(z - y).square().sum(-1))  # log of a negative number


def wrong_dtype(z, y):
    return ce_values(z, y).float()


def raises_inside(z, y):
    return z[:, 99].sum()


def detached(z, y):
    return torch.as_tensor(ce_values(z, y).detach().numpy())


@pytest.mark.parametrize(
    "fn, accessor, message",
    [
        (
            bad_shape,
            "values",
            r"loss 'bad_shape': values\(z, y\) returned shape \[\] for logits of shape \[4, 3\]; return one value per example, shape \[4\] \(sum over the class axis with \.sum\(dim=-1\); do not average over the batch\)$",
        ),
        (
            not_a_tensor,
            "values",
            r"loss 'not_a_tensor': values\(z, y\) returned a ndarray, not a torch.Tensor; compute it from z and y with torch operations",
        ),
        (
            nan_values,
            "values",
            r"loss 'nan_values': values\(z, y\) returned 4 non-finite value\(s\) \(nan\) for finite logits of shape \[4, 3\]; work in log space",
        ),
        (
            wrong_dtype,
            "values",
            r"loss 'wrong_dtype': values\(z, y\) returned dtype torch.float32 for torch.float64 logits; compute in the logits' dtype",
        ),
        (
            raises_inside,
            "values",
            r"loss 'raises_inside': values\(z, y\) raised IndexError: index 99 is out of bounds .*test_register_loss.py, line \d+\)",
        ),
        (
            detached,
            "gradient",
            r"loss 'detached': values\(z, y\) does not depend on z through autograd \(does it call \.detach\(\), \.item\(\), \.numpy\(\)",
        ),
        (bad_shape, "gradient", r"loss 'bad_shape': values\(z, y\) returned shape \[\]"),
    ],
)
def test_a_user_loss_output_is_checked_at_first_use(fn, accessor, message):
    loss = make_loss(fn.__name__, values=fn)
    z = torch.randn(4, 3, dtype=torch.float64)
    y = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0]]
    call = loss.values_fn() if accessor == "values" else loss.logit_gradient_fn()
    with pytest.raises(ValueError, match=message) as info:
        call(z, y)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=message):  # and again: a failed first use is not remembered as checked
        call(z, y)


def test_a_checked_loss_is_not_checked_again():
    outputs = iter([torch.zeros(2, dtype=torch.float64), torch.full((2,), float("nan"), dtype=torch.float64)])
    loss = make_loss("once", values=lambda z, y: next(outputs))
    z, y = torch.zeros(2, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)[:2]
    assert loss.values_fn()(z, y).tolist() == [0.0, 0.0]
    assert np.isnan(loss.values_fn()(z, y).numpy()).all()  # first use only: the hot path pays nothing


def test_a_used_loss_pickles_without_its_cached_accessors():
    import pickle

    z, y = torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, 1, 3])
    squentropy.gradient(z, y)  # caches the checked accessors (closures)
    copy = pickle.loads(pickle.dumps(squentropy))
    assert copy.name == "squentropy" and copy.values is squentropy_values
    torch.testing.assert_close(copy.gradient(z, y), squentropy.gradient(z, y))
