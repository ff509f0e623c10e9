"""AlexNet-style image classifiers (flax Linen) and their stacked T+1 form.

One family: five convolutions (ReLU; 3×3 stride-2 max pooling after the 1st,
2nd and 5th) and three fully connected layers whose hidden width is reduced
(the paper: 256).  :func:`alexnet_224` is the paper's network for 224×224×3
inputs; :func:`alexnet_small` is the same family scaled for small images (32×32
by default) for CPU runs.  No dropout: training is deterministic given a key.

``apply_fn(params, x) -> logits`` is the plain function the cljax solvers use
(``cljax.PrimalDual``, ``cljax.ProjectedGradient``); ``params`` is the flax
variable dict ``{"params": ...}`` of one network, and the T+1 networks are one
pytree with a leading network axis (:func:`init_stacked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class Conv2D(nn.Module):
    """A 2-D convolution (NHWC, kernel HWIO, same variables as ``nn.Conv``).

    ``impl="im2col"`` stacks the k² shifted windows and multiplies by the kernel
    as one matrix product.  Under ``vmap`` over networks this stays a batched
    matrix product, whereas a vmapped ``lax.conv`` becomes a grouped convolution,
    which XLA's CPU backend runs an order of magnitude slower.  ``impl="xla"``
    is ``lax.conv_general_dilated`` (the better choice on GPU).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    impl: str = "im2col"
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        c = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, c, self.features),
                            self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), self.param_dtype)
        dtype = jnp.result_type(x, kernel)
        x, kernel, bias = x.astype(dtype), kernel.astype(dtype), bias.astype(dtype)
        if self.impl == "xla":
            y = jax.lax.conv_general_dilated(x, kernel, (s, s), ((p, p), (p, p)),
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            return y + bias
        if self.impl != "im2col":
            raise ValueError(f"impl must be 'im2col' or 'xla', got {self.impl!r}")
        xp = jnp.pad(x, ((0, 0),) * (x.ndim - 3) + ((p, p), (p, p), (0, 0)))
        h_out = (x.shape[-3] + 2 * p - k) // s + 1
        w_out = (x.shape[-2] + 2 * p - k) // s + 1
        windows = [xp[..., i:i + s * (h_out - 1) + 1:s, j:j + s * (w_out - 1) + 1:s, :]
                   for i in range(k) for j in range(k)]
        patches = jnp.concatenate(windows, axis=-1)  # (..., h_out, w_out, k·k·c), order (i, j, c)
        return patches @ kernel.reshape(k * k * c, self.features) + bias


class AlexNet(nn.Module):
    """5 convolutions + 3 fully connected layers (AlexNet, Krizhevsky et al. 2012).

    Attributes:
      num_classes: width of the output layer.
      conv_features: output channels of the five convolutions.
      kernel_sizes, strides, paddings: per convolution (square).
      pool_after: indices (0-based) of the convolutions followed by max pooling.
      pool_window, pool_stride: max pooling window and stride (VALID).
      hidden: widths of the two hidden fully connected layers.
      conv_impl: ``"im2col"`` (fast on CPU under vmap) or ``"xla"``; see :class:`Conv2D`.
    """

    num_classes: int
    conv_features: Sequence[int] = (64, 192, 384, 256, 256)
    kernel_sizes: Sequence[int] = (11, 5, 3, 3, 3)
    strides: Sequence[int] = (4, 1, 1, 1, 1)
    paddings: Sequence[int] = (2, 2, 1, 1, 1)
    pool_after: Sequence[int] = (0, 1, 4)
    pool_window: int = 3
    pool_stride: int = 2
    hidden: Sequence[int] = (256, 256)
    conv_impl: str = "im2col"

    @nn.compact
    def __call__(self, x):
        for i, (f, k, s, p) in enumerate(zip(self.conv_features, self.kernel_sizes,
                                             self.strides, self.paddings)):
            x = nn.relu(Conv2D(f, k, s, p, impl=self.conv_impl, name=f"conv{i + 1}")(x))
            if i in self.pool_after:
                x = nn.max_pool(x, (self.pool_window,) * 2, strides=(self.pool_stride,) * 2)
        x = x.reshape(x.shape[:-3] + (-1,))
        for j, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"fc{j + 1}")(x))
        return nn.Dense(self.num_classes, name=f"fc{len(self.hidden) + 1}")(x)


def alexnet_224(num_classes: int = 65, hidden: int = 256, conv_impl: str = "im2col") -> AlexNet:
    """The paper's network: torchvision's AlexNet layout, hidden FC width 256.

    For 224×224×3 inputs the last feature map is 6×6×256, and with 65 classes the
    parameter count is 4,911,745 (DESIGN §4).
    """
    return AlexNet(num_classes=num_classes, hidden=(hidden, hidden), conv_impl=conv_impl)


def alexnet_small(num_classes: int = 10, width: int = 16, hidden: int = 64,
                  conv_impl: str = "im2col") -> AlexNet:
    """The same family for small images (32×32 → 4×4 before the dense layers).

    3×3 convolutions with stride 1 and padding 1, channels (w, 2w, 3w, 2w, 2w),
    2×2 stride-2 pooling after convolutions 1, 2 and 5.
    """
    return AlexNet(num_classes=num_classes,
                   conv_features=(width, 2 * width, 3 * width, 2 * width, 2 * width),
                   kernel_sizes=(3, 3, 3, 3, 3), strides=(1, 1, 1, 1, 1),
                   paddings=(1, 1, 1, 1, 1), pool_after=(0, 1, 4),
                   pool_window=2, pool_stride=2, hidden=(hidden, hidden), conv_impl=conv_impl)


def parameter_shapes(model: nn.Module, image_shape: Sequence[int]):
    """Shapes of the variables of ``model`` for one image (H, W, C), without
    allocating or initialising anything (``jax.eval_shape``)."""
    x = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
    return jax.eval_shape(model.init, jax.ShapeDtypeStruct((2,), jnp.uint32), x)


def count_parameters(tree) -> int:
    """Number of scalars in a pytree of arrays or ShapeDtypeStructs."""
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree)))


def flops_per_image(model: AlexNet, image_shape: Sequence[int]) -> int:
    """Multiply-adds × 2 of one forward pass (convolutions and dense layers)."""
    h, w, c = image_shape
    total = 0
    for i, (f, k, s, p) in enumerate(zip(model.conv_features, model.kernel_sizes,
                                         model.strides, model.paddings)):
        h = (h + 2 * p - k) // s + 1
        w = (w + 2 * p - k) // s + 1
        total += 2 * h * w * f * k * k * c
        c = f
        if i in model.pool_after:
            h = (h - model.pool_window) // model.pool_stride + 1
            w = (w - model.pool_window) // model.pool_stride + 1
    width = h * w * c
    for out in tuple(model.hidden) + (model.num_classes,):
        total += 2 * width * out
        width = out
    return total


@dataclass(frozen=True)
class Classifier:
    """A flax module as the plain function ``apply_fn(params, x) -> logits``."""

    module: nn.Module

    def __call__(self, params, x):
        return self.module.apply(params, x)

    def init(self, key, image_shape: Sequence[int]):
        """Variables of one network, initialised with ``key``."""
        return self.module.init(key, jnp.zeros((1,) + tuple(image_shape), jnp.float32))


def init_stacked(classifier: Classifier, key, image_shape: Sequence[int], num_networks: int,
                 same_init: bool = True):
    """``num_networks`` networks as one pytree with a leading network axis.

    ``same_init``: every network starts from the same draw (so the stacked point
    is feasible for every ε); otherwise one independent draw per network.
    """
    if same_init:
        one = classifier.init(key, image_shape)
        return jax.tree_util.tree_map(
            lambda leaf: jnp.broadcast_to(leaf, (num_networks,) + leaf.shape), one)
    keys = jax.random.split(key, num_networks)
    return jax.vmap(lambda k: classifier.init(k, image_shape))(keys)
