"""The plain way: one run at a time, nn.Module + torch.optim + autograd.

This is the loop a user writes first. losslab keeps it for two reasons: the tests check that
member i of a population equals this loop run with member i's configuration, and the benchmark
measures the population trainer against it. It shares only the initial weights
(``MLP.init_member`` / ``CNN.init_member``) and the data order (``data_order_generator``) with the
population code; the forward pass, the gradients (autograd through the core loss values) and the
optimiser (``torch.optim``) are PyTorch's own.
"""

from __future__ import annotations

import torch
from torch import nn

from losslab.core import get_loss
from losslab.data import Dataset
from losslab.models import CNN, MLP, get_model
from losslab.models.module_population import member_module
from losslab.train.population import Member, TrainConfig, data_order_generator


class _ReferenceCNN(nn.Module):
    def __init__(self, params):
        super().__init__()
        w1, b1, w2, b2, w3, b3 = params
        # Built in the parameters' dtype: copying float64 weights into float32 modules would round them.
        self.conv1 = nn.Conv2d(1, w1.shape[0], 5, dtype=w1.dtype)
        self.conv2 = nn.Conv2d(w1.shape[0], w2.shape[0], 5, dtype=w1.dtype)
        self.fc = nn.Linear(w3.shape[0], w3.shape[1], dtype=w1.dtype)
        with torch.no_grad():
            for module, (w, b) in ((self.conv1, (w1, b1)), (self.conv2, (w2, b2))):
                module.weight.copy_(w)
                module.bias.copy_(b)
            self.fc.weight.copy_(w3.T)
            self.fc.bias.copy_(b3)

    def forward(self, x):
        h = torch.max_pool2d(torch.relu(self.conv1(x.view(-1, 1, 28, 28))), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.fc(h.flatten(1))


def reference_model(dataset: Dataset, member: Member, config: TrainConfig, outputs: int) -> nn.Module:
    dtype = getattr(torch, config.dtype)
    entry = get_model(config.model)
    if entry.module_factory is not None:  # an nn.Module model: the very module each member starts from
        return member_module(
            config.model,
            entry.module_factory,
            dataset.input_shape,
            outputs,
            member.seed,
            member.init_scale,
            config.hidden,
            dtype,
        )
    if config.model == "cnn":
        return _ReferenceCNN(CNN.init_member(outputs, (8, 16), member.seed, member.init_scale, dtype))
    hidden = [] if config.model == "linear" else list(config.hidden if config.hidden is not None else [100, 100])
    sizes = [dataset.num_features, *hidden, outputs]
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(MLP.init_member(sizes, member.seed, member.init_scale, dtype)):
        linear = nn.Linear(w.shape[0], w.shape[1], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(w.T)
            linear.bias.copy_(b[0])
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train_reference(dataset: Dataset, member: Member, config: TrainConfig, binary: bool = False):
    """Train one member the plain way; returns (model, test accuracy)."""
    dtype, device = getattr(torch, config.dtype), torch.device(config.device)
    outputs = 1 if binary else dataset.num_classes
    model = reference_model(dataset, member, config, outputs).to(device)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=member.lr, momentum=config.momentum)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=member.lr, betas=config.betas, eps=config.adam_eps)
    loss = get_loss(member.loss)
    params = loss.resolve_params(member.loss_params)
    values = loss.binary_values if binary else loss.values
    dataset = dataset.to(device)
    x = dataset.x_train.reshape(dataset.x_train.shape[0], -1).to(dtype)
    # nn.Module models take [batch, *input_shape], as the population's torch.func path gives them.
    module_model = get_model(config.model).module_factory is not None

    def shaped(batch):
        return batch.view(-1, *dataset.input_shape) if module_model else batch

    y = dataset.y_train
    targets = y.to(dtype) if binary else torch.nn.functional.one_hot(y, outputs).to(dtype)
    order_gen = data_order_generator(member.seed)
    steps = x.shape[0] // config.batch_size
    for _ in range(config.epochs):
        order = torch.randperm(x.shape[0], generator=order_gen)
        for s in range(steps):
            idx = order[s * config.batch_size : (s + 1) * config.batch_size].to(device)
            logits = model(shaped(x[idx]))
            # The loss as a plain PyTorch expression (the unvalidated value function), as a user writes it.
            value = values(logits.squeeze(-1) if binary else logits, targets[idx], **params).mean()
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
    with torch.no_grad():
        logits = model(shaped(dataset.x_test.reshape(dataset.x_test.shape[0], -1).to(dtype)))
        predicted = (logits.squeeze(-1) > 0).long() if binary else logits.argmax(-1)
        accuracy = (predicted == dataset.y_test).double().mean().item()
    return model, accuracy
