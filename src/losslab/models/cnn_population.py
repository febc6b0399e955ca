"""The image ``cnn`` as batched matrix products with a hand-written backward (the CPU fast path): ``CNNPopulation``.

28x28 images: conv 5x5 -> ReLU -> max-pool 2, twice, then a linear head (``cnn1d_population`` does the same for the
MNIST-1D reference CNN).
Activations are channels-last, ``[M, B, *positions, channels]``, so that a convolution's input patches are
runs of contiguous memory, and every convolution is a product ``[M, rows, K] @ [M, K, N]`` on the block's
matmul library (``losslab.models.matmul``: torch's ``bmm`` or numpy's BLAS), like the MLP's.

Why not im2col everywhere. Unfolding every 5x5 patch of a 28x28 image into a row ([B*576, 25]) copies 25
values per output position in runs of 5 floats, which on CPU costs more than the products themselves, and its
products (K = 25, N = 8) starve any BLAS; folding the input gradient of the second convolution back (col2im) is
25 strided passes. The 2-D convolutions here are instead *banded* products over tiles of 4 output columns: a
tile's input is 5 rows of 8 columns (contiguous runs of 8 x channels values), and the weight is a banded
("Toeplitz") matrix that maps those to 4 columns of all output channels: [B*144, 40] @ [40, 32] for the first
convolution (1.6x the useful multiply-adds, in shapes a BLAS runs well), [B*16, 320] @ [320, 64] for the second;
the input gradient folds back in 20 passes of contiguous runs. Measured on one Zen 3 core (batch 64, blocks of
8): im2col costs about 3.0 ms a member-step in products and 3.2 ms in its copies and folds; the banded form
about 2.8 ms in products and 1.2 ms in everything else (``benchmarks/p2_cnn.py`` prints the bounds).

Max-pooling comes before the bias and ReLU (max(x) + b = max(x + b) and ReLU is monotone, so the values are
those of conv -> ReLU -> pool), on a quarter of the elements; its backward sends each window's gradient to the
first maximal position in row-major order, as ``torch.nn.functional.max_pool2d`` does.

Member i starts exactly as the plain model (``reference.py``) and trains to the same numbers in float64
(tests/test_population.py, tests/test_module_models.py), and a block's arithmetic does not depend on which
thread runs it (the block size, threads per block and library are the execution plan's, recorded with the
results).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from losslab.models.cnn import CNN
from losslab.models.matmul import BatchedProducts
from losslab.models.protocol import StackedParameters

#: Examples per evaluation chunk (a few MB of activations per member).
EVAL_CHUNK = 128
#: Output columns per tile of the banded products (the 2-D convolutions' widths, 24 and 8, are multiples of it).
TILE = 4


def products_of(library: str) -> BatchedProducts:
    return BatchedProducts.of(library, None)


def relu_backward_(grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    # threshold_backward is several times faster on CPU than grad * (output > 0); in place: grad is our buffer.
    return torch.ops.aten.threshold_backward.grad_input(grad, output, 0.0, grad_input=grad)


class _Banded2d:
    """A 5x5 convolution (stride 1, no padding) of channels-last x [M, B, H, W, Cin] as tiles of ``TILE`` output
    columns, with channel-major output: out^T [M, N, R] = band^T [M, N, K] @ tiles^T [M, K, R], where a tile's
    input is 5 rows of TILE + 4 columns (K = 5 (TILE + 4) Cin values, runs of (TILE + 4) Cin in memory), N =
    (tile column, output channel) and R = (row parity, example, row pair, tile): the four positions of every 2x2
    pooling window then lie in four long contiguous runs (``_Pool``)."""

    def __init__(self, cin: int, cout: int, height: int, width: int):
        self.cin, self.cout, self.h, self.w = cin, cout, height, width
        self.ho, self.wo = height - 4, width - 4
        self.tiles = self.wo // TILE
        self.span = TILE + 4  # input columns a tile reads
        self.k = 5 * self.span * cin
        self.n = TILE * cout

    def rows(self, batch: int) -> int:
        return batch * self.ho * self.tiles

    def tile_index(self, batch: int, device) -> torch.Tensor:
        """Where each row of ``tile_inputs`` starts, in units of TILE * Cin values of one member's input."""
        group = TILE * self.cin
        r = torch.arange(2).view(2, 1, 1, 1, 1)
        b = torch.arange(batch).view(1, batch, 1, 1, 1)
        p = torch.arange(self.ho // 2).view(1, 1, -1, 1, 1)
        t = torch.arange(self.tiles).view(1, 1, 1, -1, 1)
        di = torch.arange(5).view(1, 1, 1, 1, 5)
        start = b * self.h * self.w * self.cin + (2 * p + r + di) * self.w * self.cin + t * group
        return (start // group).reshape(-1).to(device)

    def tile_inputs(self, x: torch.Tensor, out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x [M, B, H, W, Cin] (each member's contiguous; members may share memory) -> out [M, R, K], rows in
        (row parity, example, row pair, tile) order. Each member's tiles are one ``index_select`` of rows of
        (TILE + 4) Cin values from an overlapping view of its input: 2-3x faster on CPU than a strided copy
        (``copy_`` moves runs of 8 values for the first convolution)."""
        group, width = TILE * self.cin, self.span * self.cin
        rows = out.view(out.shape[0], -1, width)
        for i in range(x.shape[0]):
            flat = x[i].reshape(-1)
            starts = flat.as_strided(((flat.numel() - width) // group + 1, width), (group, 1))
            torch.index_select(starts, 0, index, out=rows[i])
        return out

    def _diagonals(self, t: torch.Tensor) -> torch.Tensor:
        """The band positions of t [M, N, K] as a [M, Cout, Cin, 5, 5, TILE] view: t[(j, co), (di, dj + j, ci)]."""
        k, cin = self.k, self.cin
        return t.as_strided(
            (t.shape[0], self.cout, cin, 5, 5, TILE),
            (t.stride(0), k, 1, self.span * cin, cin, self.cout * k + cin),
            t.storage_offset(),
        )

    def band(self, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """weight [M, Cout, Cin, 5, 5] -> band^T [M, N, K] in ``out`` (which must hold zeros off the band:
        those are never written)."""
        self._diagonals(out).copy_(weight.unsqueeze(-1).expand(*weight.shape, TILE))
        return out

    def weight_grad(self, band_grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The gradient of ``band``: d band^T [M, N, K] -> out [M, Cout, Cin, 5, 5] (a sum over the tile column)."""
        return torch.sum(self._diagonals(band_grad), dim=-1, out=out)

    def fold_input_grad(self, tile_grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The input gradient: tile_grad [M, R, K] (d loss / d tile inputs) summed into out [M, B, H, W, Cin]."""
        m, b = out.shape[:2]
        pairs, width = self.ho // 2, self.span * self.cin
        g = tile_grad.view(m, 2, b, pairs, self.tiles, 5, width)
        flat = out.view(m, b, self.h, self.w * self.cin)
        out.zero_()
        for parity in range(2):
            for di in range(5):
                first = parity + di  # input row of output row 2p + parity, kernel row di, for p = 0
                rows = flat[:, :, first : first + 2 * pairs - 1 : 2]
                for t in range(self.tiles):
                    start = t * TILE * self.cin
                    rows[:, :, :, start : start + width] += g[:, parity, :, :, t, di]
        return out


class _Pool:
    """2x2 max-pooling of a ``_Banded2d`` output out^T [M, N, R], N = (column pair, column parity, channel),
    R = (row parity, rest): elementwise passes over long contiguous runs. Each window's gradient goes to its
    first maximal position in row-major order (within a row first, then the top row unless the bottom is
    greater), as ``torch.nn.functional.max_pool2d`` does. The choices are kept as 0/1 floats: on CPU a
    comparison into a float tensor and a product with it are vectorised, ``torch.where`` and boolean masks
    are not (measured 20x slower)."""

    def __init__(self, conv: _Banded2d, members: int, batch: int, like: torch.Tensor):
        self.shape = (members, TILE // 2, 2, conv.cout, conv.rows(batch))  # [M, pair, parity, C, R]
        m, pairs, _, c, r = self.shape
        self.columns = like.new_empty(m, pairs, c, r)  # the maximum of each row's pair of columns
        self.right = like.new_empty(m, pairs, c, r)  # 1.0 where the right column is greater
        self.bottom = like.new_empty(m, pairs, c, r // 2)  # 1.0 where the bottom row is greater

    def forward(self, o_t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """o_t [M, N, R] -> out [M, pair, C, R / 2] (columns (example, row pair, tile))."""
        v = o_t.view(self.shape)
        left, right = v[:, :, 0], v[:, :, 1]
        torch.gt(right, left, out=self.right)  # strictly greater: on a tie the earlier position keeps it
        torch.maximum(left, right, out=self.columns)
        half = self.shape[-1] // 2
        top, bottom = self.columns[..., :half], self.columns[..., half:]
        torch.gt(bottom, top, out=self.bottom)
        return torch.maximum(top, bottom, out=out)

    def backward(self, g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """g [M, pair, C, R / 2] -> out [M, N, R], zero except at each window's maximum."""
        half = self.shape[-1] // 2
        columns = self.columns  # reused: the forward's values are no longer needed
        bottom = torch.mul(g, self.bottom, out=columns[..., half:])
        torch.sub(g, bottom, out=columns[..., :half])  # g - g = 0 where the bottom row took it
        v = out.view(self.shape)
        right = torch.mul(columns, self.right, out=v[:, :, 1])
        torch.sub(columns, right, out=v[:, :, 0])
        return out


class CNNPopulation(StackedParameters):
    """Population convnet for [1, 28, 28] inputs: conv(c1, 5) -> ReLU -> pool 2 -> conv(c2, 5) -> ReLU -> pool 2
    -> linear(K), as banded products (see the module docstring). Parameters in PyTorch's layouts, stacked:
    conv weights [M, Cout, Cin, 5, 5], biases [M, C], head [M, c2 * 16, K] (rows in (channel, row, column)
    order, as ``CNN.init_member`` makes them) and [M, K]."""

    splittable: ClassVar[bool] = True
    matmul_libraries: ClassVar[tuple[str, ...]] = ("torch", "numpy")

    def __init__(self, params: list[torch.Tensor], channels: tuple[int, int], matmul: str = "torch"):
        self.params_list = params
        self.channels = tuple(channels)
        self.matmul = matmul
        c1, c2 = self.channels
        self.conv1 = _Banded2d(1, c1, 28, 28)
        self.conv2 = _Banded2d(c1, c2, 12, 12)
        self._workspace: dict = {}

    @classmethod
    def create(cls, num_classes: int, seeds, logit_scales, channels=(8, 16), dtype=torch.float32, device="cpu"):
        members = [CNN.init_member(num_classes, channels, s, c, dtype) for s, c in zip(seeds, logit_scales)]
        stacked = [torch.stack([m[i] for m in members]).to(device) for i in range(6)]
        return cls(stacked, channels)

    def select(self, members: slice) -> CNNPopulation:
        return CNNPopulation([p[members].clone() for p in self.params_list], self.channels, self.matmul)

    @classmethod
    def concatenate(cls, parts: list[CNNPopulation]) -> CNNPopulation:
        stacked = [torch.cat(ps) for ps in zip(*(p.params_list for p in parts))]
        return cls(stacked, parts[0].channels, parts[0].matmul)

    def member_bytes(self, batch: int) -> int:
        """Parameters with gradients and optimiser state, and one training step's buffers."""
        c1, c2 = self.channels
        n_params = sum(p[0].numel() for p in self.params_list)
        per_example = (
            784
            + 2 * self.conv1.rows(1) * self.conv1.k  # tile inputs (kept for the weight gradient)
            + 2 * 24 * 24 * c1  # conv1 output and its gradient
            + 3 * 12 * 12 * c1
            + 3 * self.conv2.rows(1) * self.conv2.k  # tile inputs, their gradient
            + 2 * 8 * 8 * c2
            + 3 * 16 * c2
        )
        return self.params_list[0].element_size() * (3 * n_params + batch * per_example)

    # -- the step ------------------------------------------------------------------------------------------

    def _new_buffers(self, batch: int, training: bool) -> dict:
        like = self.params_list[0]
        m, (c1, c2) = self.members, self.channels
        k = self.params_list[5].shape[1]
        r1, r2 = self.conv1.rows(batch), self.conv2.rows(batch)
        new = lambda *shape: like.new_empty(shape)  # noqa: E731
        buffers = {
            "x1": new(m, r1, self.conv1.k),
            "index1": self.conv1.tile_index(batch, like.device),
            "index2": self.conv2.tile_index(batch, like.device),
            "band1": like.new_zeros(m, self.conv1.n, self.conv1.k),  # zeros off the band, set once
            "o1": new(m, self.conv1.n, r1),
            "p1": new(m, 2, c1, r1 // 2),
            "pool1": _Pool(self.conv1, m, batch, like),
            "h1": new(m, batch, 12, 12, c1),
            "x2": new(m, r2, self.conv2.k),
            "band2": like.new_zeros(m, self.conv2.n, self.conv2.k),
            "o2": new(m, self.conv2.n, r2),
            "p2": new(m, 2, c2, r2 // 2),
            "pool2": _Pool(self.conv2, m, batch, like),
            "h2": new(m, batch, 16 * c2),
            "head": new(m, 16 * c2, k),
            "logits_t": new(m, k, batch),
        }
        if training:
            buffers.update(
                dh2=new(m, batch, 16 * c2),
                dp2=new(m, 2, c2, r2 // 2),
                do2=new(m, self.conv2.n, r2),
                dband2=new(m, self.conv2.n, self.conv2.k),
                dx2=new(m, r2, self.conv2.k),
                dh1=new(m, batch, 12, 12, c1),
                dp1=new(m, 2, c1, r1 // 2),
                do1=new(m, self.conv1.n, r1),
                dband1=new(m, self.conv1.n, self.conv1.k),
                dhead=new(m, k, 16 * c2),
                grads=[torch.empty_like(p) for p in self.params_list],
            )
        return buffers

    @staticmethod
    def _channels_last(pooled: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """pooled [M, pair, C, (B, row, tile)] -> out [M, B, row, (tile, pair), C], the next layer's layout."""
        m, pairs, c, _ = pooled.shape
        b, rows = out.shape[1], out.shape[2]
        src = pooled.view(m, pairs, c, b, rows, -1).permute(0, 3, 4, 5, 1, 2)
        return out.view(src.shape).copy_(src)

    @staticmethod
    def _pooled_layout(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The inverse of ``_channels_last``: grad [M, B, row, (tile, pair), C] -> out [M, pair, C, (B, row, tile)]."""
        m, pairs, c, _ = out.shape
        b, rows = grad.shape[1], grad.shape[2]
        src = grad.reshape(m, b, rows, -1, pairs, c).permute(0, 4, 5, 1, 2, 3)
        out.view(src.shape).copy_(src)
        return out

    def _forward(self, x: torch.Tensor, buf: dict, mm: BatchedProducts):
        """x [M, B, 784] -> class-major logits [M, K, B] (in buf), and what the backward needs."""
        w1, b1, w2, b2, w3, b3 = self.params_list
        m, batch = x.shape[:2]
        c1, c2 = self.channels
        k = w3.shape[-1]
        x1 = self.conv1.tile_inputs(x.view(m, batch, 28, 28, 1), buf["x1"], buf["index1"])
        band1 = self.conv1.band(w1, buf["band1"])
        o1 = mm.product(buf["o1"], band1, x1.transpose(1, 2))  # [M, 4 c1, R1]
        p1 = buf["pool1"].forward(o1, buf["p1"])  # [M, 2, c1, R1 / 2]
        p1.add_(b1.view(m, 1, c1, 1)).relu_()  # the bias after the pool: a quarter of the elements
        h1 = self._channels_last(p1, buf["h1"])  # [M, B, 12, 12, c1]
        x2 = self.conv2.tile_inputs(h1, buf["x2"], buf["index2"])
        band2 = self.conv2.band(w2, buf["band2"])
        o2 = mm.product(buf["o2"], band2, x2.transpose(1, 2))  # [M, 4 c2, R2]
        p2 = buf["pool2"].forward(o2, buf["p2"])
        p2.add_(b2.view(m, 1, c2, 1)).relu_()
        h2 = self._channels_last(p2, buf["h2"].view(m, batch, 4, 4, c2)).view(m, batch, 16 * c2)
        # The head's rows are in (channel, row, column) order, h2's in (row, column, channel): permute the
        # head (c2 * 16 x K values) rather than the activations.
        head = buf["head"]
        head.view(m, 16, c2, k).copy_(w3.view(m, c2, 16, k).transpose(1, 2))
        # [M, K, 16 c2] @ [M, 16 c2, B] -> [M, K, B]: class-major logits, as the MLP's (softmax over K is fast).
        logits_t = mm.add_product(buf["logits_t"], b3.unsqueeze(2), head.transpose(1, 2), h2.transpose(1, 2))
        return logits_t, (x1, x2, h2, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [M, N, K] for inputs [M, N, 784] (evaluation), in chunks of ``EVAL_CHUNK`` examples: the
        activations of a chunk stay in cache, where one pass over 10,000 examples would stream from memory."""
        m, n = x.shape[:2]
        mm = products_of(self.matmul if x.device.type == "cpu" else "torch")
        k = self.params_list[5].shape[1]
        out = x.new_empty(m, k, n)  # class-major, as the training step's logits
        for start in range(0, n, EVAL_CHUNK):
            part = x[:, start : start + EVAL_CHUNK]
            logits_t, _ = self._forward(part, self._buffers(part.shape[1], training=False), mm)
            out[:, :, start : start + part.shape[1]] = logits_t
        return out.transpose(1, 2)

    def forward_backward(self, x: torch.Tensor, logit_grad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [M, B, K] and the gradients of the loss (in ``params`` order); both live in buffers reused by
        the next step."""
        m, batch = x.shape[:2]
        c1, c2 = self.channels
        buf = self._buffers(batch, training=True)
        mm = products_of(self.matmul if x.device.type == "cpu" else "torch")
        logits_t, (x1, x2, h2, head) = self._forward(x, buf, mm)
        logits = logits_t.transpose(1, 2)
        delta_t = logit_grad(logits).transpose(1, 2)  # [M, K, B]
        if not delta_t.is_contiguous():
            delta_t = delta_t.contiguous()
        grads = buf["grads"]
        k = delta_t.shape[1]
        # Head: d head^T = delta_t @ h2 [M, K, 16 c2], back to the (channel, row, column) rows of w3.
        dhead = mm.product(buf["dhead"], delta_t, h2)
        grads[4].view(m, c2, 16, k).copy_(dhead.view(m, k, 16, c2).permute(0, 3, 2, 1))
        torch.sum(delta_t, dim=2, out=grads[5])
        dh2 = mm.product(buf["dh2"], delta_t.transpose(1, 2), head.transpose(1, 2))  # [M, B, 16 c2]
        relu_backward_(dh2, h2)
        torch.sum(dh2.view(m, batch * 16, c2), dim=1, out=grads[3])  # the bias comes after the pool
        dp2 = self._pooled_layout(dh2.view(m, batch, 4, 4, c2), buf["dp2"])
        do2 = buf["pool2"].backward(dp2, buf["do2"])  # [M, 4 c2, R2]
        dband2 = mm.product(buf["dband2"], do2, x2)  # d band^T = d out^T @ tiles
        self.conv2.weight_grad(dband2, grads[2])
        dx2 = mm.product(buf["dx2"], do2.transpose(1, 2), buf["band2"])  # [M, R2, K2]
        dh1 = self.conv2.fold_input_grad(dx2, buf["dh1"])
        relu_backward_(dh1, buf["h1"])
        torch.sum(dh1.view(m, -1, c1), dim=1, out=grads[1])
        dp1 = self._pooled_layout(dh1, buf["dp1"])
        do1 = buf["pool1"].backward(dp1, buf["do1"])
        dband1 = mm.product(buf["dband1"], do1, x1)
        self.conv1.weight_grad(dband1, grads[0])
        return logits, grads
