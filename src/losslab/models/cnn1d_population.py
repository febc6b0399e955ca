"""The MNIST-1D reference CNN (``cnn1d``) as batched matrix products with a hand-written backward (the CPU fast
path): ``CNN1dPopulation``.

Activations are channels-last, ``[M, B, positions, channels]``: with stride 2 and padding 1, a convolution's input
window (k positions of all channels) is one contiguous run of the zero-padded input, unfolded into the rows of a
product ``[M, B*Lout, k Cin] @ [M, k Cin, Cout]`` on the block's matmul library, like the MLP's. Member i starts as
the plain module of ``module_population.member_module`` and trains to the same numbers in float64
(tests/test_module_models.py).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from losslab.models.cnn_population import EVAL_CHUNK, products_of, relu_backward_
from losslab.models.matmul import BatchedProducts
from losslab.models.module_population import check_module, member_module
from losslab.models.protocol import StackedParameters


class _StridedConv1d:
    """Conv1d(cin, cout, k, stride 2, padding 1) of channels-last, zero-padded input [M, B, L + 2, Cin] as
    the product tiles [M, B*Lout, k Cin] @ weight [M, k Cin, Cout]; a tile is k positions of all channels,
    one contiguous run of k Cin values."""

    def __init__(self, cin: int, cout: int, kernel: int, length: int):
        self.cin, self.cout, self.kernel, self.length = cin, cout, kernel, length
        self.out_length = (length + 2 - kernel) // 2 + 1

    def tiles(self, padded: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """padded [M, B, L + 2, Cin] -> out [M, B * Lout, k Cin]."""
        m, b = padded.shape[:2]
        view = padded.as_strided(
            (m, b, self.out_length, self.kernel * self.cin),
            (padded.stride(0), padded.stride(1), 2 * self.cin, 1),
            padded.storage_offset(),
        )
        out.view(m, b, self.out_length, -1).copy_(view)
        return out

    def matrix(self, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """weight [M, Cout, Cin, k] -> out [M, k Cin, Cout], rows in (kernel position, input channel) order."""
        m = weight.shape[0]
        out.view(m, self.kernel, self.cin, self.cout).copy_(weight.permute(0, 3, 2, 1))
        return out

    def weight_grad(self, matrix_grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        m = matrix_grad.shape[0]
        return out.copy_(matrix_grad.view(m, self.kernel, self.cin, self.cout).permute(0, 3, 2, 1))

    def fold(self, tile_grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """tile_grad [M, B * Lout, k Cin] summed into out [M, B, L + 2, Cin] (the padded input's gradient)."""
        m, b = out.shape[:2]
        g = tile_grad.view(m, b, self.out_length, self.kernel, self.cin)
        n = self.out_length
        # Stride 2: kernel position j writes positions j, j + 2, ..., all of j's parity. Per parity, the first
        # such j is copied (and the positions it misses zeroed), the others added: a pass fewer than zeroing
        # everything and adding each j.
        for parity in range(2):
            positions = out[:, :, parity::2]
            offsets = [j // 2 for j in range(parity, self.kernel, 2)]
            first = offsets[0]
            positions[:, :, :first].zero_()
            positions[:, :, first + n :].zero_()
            positions[:, :, first : first + n].copy_(g[:, :, :, parity])
            for j, offset in zip(range(parity + 2, self.kernel, 2), offsets[1:]):
                positions[:, :, offset : offset + n] += g[:, :, :, j]
        return out


class CNN1dPopulation(StackedParameters):
    """The MNIST-1D reference CNN (``mnist1d_models.CNN1d``: three Conv1d with stride 2 and padding 1, ReLU, a
    linear head) as batched products with a hand-written backward; members start as the plain modules
    built by ``module_population.member_module`` (the same seeds, the same initial logit scale), and their
    parameters are the module's, by name (``member_state``)."""

    splittable: ClassVar[bool] = True
    matmul_libraries: ClassVar[tuple[str, ...]] = ("torch", "numpy")
    NAMES: ClassVar[tuple[str, ...]] = (
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "conv3.weight",
        "conv3.bias",
        "linear.weight",
        "linear.bias",
    )

    def __init__(self, params: list[torch.Tensor], length: int, matmul: str = "torch"):
        self.params_list = params
        self.length = length
        self.matmul = matmul
        channels = params[0].shape[1]
        self.layers = []
        for i, (cin, kernel) in enumerate(((1, 5), (channels, 3), (channels, 3))):
            self.layers.append(_StridedConv1d(cin, channels, kernel, length if i == 0 else self.layers[-1].out_length))
        self._workspace: dict = {}

    @classmethod
    def create(cls, name, factory, input_shape, num_outputs, seeds, logit_scales, dtype=torch.float32, device="cpu"):
        modules = [
            member_module(name, factory, input_shape, num_outputs, s, c, None, dtype)
            for s, c in zip(seeds, logit_scales)
        ]
        check_module(name, modules[0], tuple(input_shape), num_outputs)
        states = [dict(m.named_parameters()) for m in modules]
        if tuple(states[0]) != cls.NAMES:
            raise ValueError(f"model {name!r}: expected the parameters {list(cls.NAMES)}, got {list(states[0])}")
        params = [torch.stack([s[n].detach() for s in states]).to(device) for n in cls.NAMES]
        return cls(params, int(input_shape[0]))

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's parameters by the module's own names (``module.load_state_dict`` takes them)."""
        return {name: p[i] for name, p in zip(self.NAMES, self.params_list)}

    def select(self, members: slice) -> CNN1dPopulation:
        return CNN1dPopulation([p[members].clone() for p in self.params_list], self.length, self.matmul)

    @classmethod
    def concatenate(cls, parts: list[CNN1dPopulation]) -> CNN1dPopulation:
        return cls([torch.cat(ps) for ps in zip(*(p.params_list for p in parts))], parts[0].length, parts[0].matmul)

    def member_bytes(self, batch: int) -> int:
        n_params = sum(p[0].numel() for p in self.params_list)
        per_example = sum(
            2 * (l.length + 2) * l.cin + 2 * l.out_length * l.kernel * l.cin + 2 * l.out_length * l.cout
            for l in self.layers
        )
        return self.params_list[0].element_size() * (3 * n_params + batch * per_example)

    def _new_buffers(self, batch: int, training: bool) -> dict:
        like = self.params_list[0]
        m = self.members
        k, features = self.params_list[6].shape[1:]
        new = lambda *shape: like.new_empty(shape)  # noqa: E731
        layers = self.layers
        buffers = {
            # Each layer's zero-padded input: the borders stay zero, only the interiors are written.
            "padded": [like.new_zeros(m, batch, l.length + 2, l.cin) for l in layers],
            "tiles": [new(m, batch * l.out_length, l.kernel * l.cin) for l in layers],
            "matrix": [new(m, l.kernel * l.cin, l.cout) for l in layers],
            "out": [new(m, batch * l.out_length, l.cout) for l in layers],
            "head": new(m, k, features),
            "logits_t": new(m, k, batch),
        }
        if training:
            buffers.update(
                dpadded=[new(m, batch, l.length + 2, l.cin) for l in layers],
                dtiles=[new(m, batch * l.out_length, l.kernel * l.cin) for l in layers],
                dmatrix=[new(m, l.kernel * l.cin, l.cout) for l in layers],
                dout=[new(m, batch * l.out_length, l.cout) for l in layers],
                dh=new(m, batch, features),
                dhead=new(m, k, features),
                grads=[torch.empty_like(p) for p in self.params_list],
            )
        return buffers

    def _forward(self, x: torch.Tensor, buf: dict, mm: BatchedProducts) -> torch.Tensor:
        """x [M, B, L] -> class-major logits [M, K, B] (in buf); every layer's ReLU output stays in buf."""
        m, batch = x.shape[:2]
        buf["padded"][0][:, :, 1:-1, 0] = x
        for i, layer in enumerate(self.layers):
            weight, bias = self.params_list[2 * i], self.params_list[2 * i + 1]
            tiles = layer.tiles(buf["padded"][i], buf["tiles"][i])
            out = mm.product(buf["out"][i], tiles, layer.matrix(weight, buf["matrix"][i]))  # [M, B*Lout, C]
            if i + 1 < len(self.layers):  # bias and ReLU straight into the next layer's padded input (interior)
                interior = buf["padded"][i + 1][:, :, 1:-1]
                torch.add(out.view(interior.shape), bias.view(m, 1, 1, -1), out=interior).relu_()
            else:
                out.add_(bias.unsqueeze(1)).relu_()
        last = self.layers[-1]
        h = buf["out"][-1].view(m, batch, last.out_length * last.cout)  # (position, channel) order
        w, b = self.params_list[6], self.params_list[7]
        k = w.shape[1]
        # The head's columns are in (channel, position) order (the module flattens [C, L]), h's in (position,
        # channel): permute the head (K x 125 values) rather than the activations.
        head = buf["head"]
        head.view(m, k, last.out_length, last.cout).copy_(w.view(m, k, last.cout, last.out_length).transpose(2, 3))
        return mm.add_product(buf["logits_t"], b.unsqueeze(2), head, h.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [M, N, K] for inputs [M, N, L] (evaluation), in chunks of ``EVAL_CHUNK`` examples."""
        m, n = x.shape[:2]
        mm = products_of(self.matmul if x.device.type == "cpu" else "torch")
        out = x.new_empty(m, self.params_list[6].shape[1], n)
        for start in range(0, n, EVAL_CHUNK):
            part = x[:, start : start + EVAL_CHUNK]
            out[:, :, start : start + part.shape[1]] = self._forward(part, self._buffers(part.shape[1], False), mm)
        return out.transpose(1, 2)

    def forward_backward(self, x: torch.Tensor, logit_grad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [M, B, K] and the gradients of the loss (in ``params`` order), in buffers reused next step."""
        m, batch = x.shape[:2]
        buf = self._buffers(batch, training=True)
        mm = products_of(self.matmul if x.device.type == "cpu" else "torch")
        logits = self._forward(x, buf, mm).transpose(1, 2)
        delta_t = logit_grad(logits).transpose(1, 2)  # [M, K, B]
        if not delta_t.is_contiguous():
            delta_t = delta_t.contiguous()
        grads, layers = buf["grads"], self.layers
        last = layers[-1]
        k = delta_t.shape[1]
        h = buf["out"][-1].view(m, batch, -1)
        dhead = mm.product(buf["dhead"], delta_t, h)  # [M, K, (position, channel)]
        grads[6].view(m, k, last.cout, last.out_length).copy_(
            dhead.view(m, k, last.out_length, last.cout).transpose(2, 3)
        )
        torch.sum(delta_t, dim=2, out=grads[7])
        dh = mm.product(buf["dh"], delta_t.transpose(1, 2), buf["head"])  # [M, B, (position, channel)]
        g = relu_backward_(dh, h).view(m, -1, last.cout)
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            torch.sum(g, dim=1, out=grads[2 * i + 1])
            dmatrix = mm.product(buf["dmatrix"][i], buf["tiles"][i].transpose(1, 2), g)
            layer.weight_grad(dmatrix, grads[2 * i])
            if i == 0:
                break
            dtiles = mm.product(buf["dtiles"][i], g, buf["matrix"][i].transpose(1, 2))
            dpadded = layer.fold(dtiles, buf["dpadded"][i])
            below = layers[i - 1]
            # Through the ReLU of the layer below, into a contiguous [M, B*L, C] gradient for its products.
            g = buf["dout"][i - 1]
            torch.ops.aten.threshold_backward.grad_input(
                dpadded[:, :, 1:-1],
                buf["padded"][i][:, :, 1:-1],  # the layer below's ReLU output
                0.0,
                grad_input=g.view(m, batch, below.out_length, below.cout),
            )
        return logits, grads


def cnn1d_builder(entry):
    """The ``build`` of the ``cnn1d`` model entry: ``CNN1dPopulation`` on the CPU, the entry's own (torch.func)
    population on a GPU."""
    vmap_build = entry.build

    def build(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
        if str(device) != "cpu":
            return vmap_build(input_shape, num_outputs, seeds, logit_scales, hidden, dtype, device)
        return CNN1dPopulation.create(
            entry.name, entry.module_factory, input_shape, num_outputs, seeds, logit_scales, dtype, device
        )

    return build
