"""AlexNet-style models: parameter counts, the im2col convolution, stacked networks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.experiments.vision.models import (AlexNet, Classifier, Conv2D, alexnet_224, alexnet_small,
                                 count_parameters, flops_per_image, init_stacked,
                                 parameter_shapes)


def alexnet_count_by_hand(num_classes, hidden=256):
    """torchvision's AlexNet layout, counted layer by layer (weights + biases)."""
    convs = [(3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3)]
    total = sum(cin * cout * k * k + cout for cin, cout, k in convs)
    dense = [(256 * 6 * 6, hidden), (hidden, hidden), (hidden, num_classes)]
    return total + sum(i * o + o for i, o in dense)


def test_alexnet_224_parameter_count_matches_the_paper():
    shapes = parameter_shapes(alexnet_224(65), (224, 224, 3))  # eval_shape: nothing allocated
    assert count_parameters(shapes) == 4_911_745
    assert shapes["params"]["fc1"]["kernel"].shape == (9216, 256)  # 6x6x256 feature map


@pytest.mark.parametrize("num_classes", [2, 10, 65])
def test_alexnet_224_count_by_layer(num_classes):
    shapes = parameter_shapes(alexnet_224(num_classes), (224, 224, 3))
    assert count_parameters(shapes) == alexnet_count_by_hand(num_classes)


def test_small_model_shapes_and_flops():
    model = alexnet_small(10, width=4, hidden=16)
    shapes = parameter_shapes(model, (32, 32, 3))
    # 32 -> 16 -> 8 -> 4 after the three poolings; 2w = 8 channels
    assert shapes["params"]["fc1"]["kernel"].shape == (4 * 4 * 8, 16)
    expected = (2 * 32 * 32 * 4 * 9 * 3 + 2 * 16 * 16 * 8 * 9 * 4 + 2 * 8 * 8 * 12 * 9 * 8
                + 2 * 8 * 8 * 8 * 9 * 12 + 2 * 8 * 8 * 8 * 9 * 8 + 2 * 128 * 16 + 2 * 16 * 16
                + 2 * 16 * 10)
    assert flops_per_image(model, (32, 32, 3)) == expected
    out = jax.eval_shape(model.apply, shapes, jax.ShapeDtypeStruct((5, 32, 32, 3), jnp.float32))
    assert out.shape == (5, 10)


@pytest.mark.parametrize("kernel,stride,padding,size", [(3, 1, 1, 7), (5, 2, 2, 9), (4, 3, 0, 11),
                                                        (1, 1, 0, 4)])
def test_im2col_convolution_equals_flax_conv(kernel, stride, padding, size):
    x = jax.random.normal(jax.random.PRNGKey(1), (2, size, size, 3), jnp.float64)
    ours = Conv2D(5, kernel, stride, padding, impl="im2col")
    reference = nn.Conv(5, (kernel, kernel), strides=(stride, stride),
                        padding=((padding, padding), (padding, padding)))
    params = jax.jit(reference.init)(jax.random.PRNGKey(2), x)
    assert (jax.tree_util.tree_map(jnp.shape, params)
            == jax.tree_util.tree_map(jnp.shape, jax.eval_shape(ours.init, jax.random.PRNGKey(2), x)))
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
    want = jax.jit(reference.apply)(params, x)
    xla = Conv2D(5, kernel, stride, padding, impl="xla")
    for module in (ours, xla):
        np.testing.assert_allclose(jax.jit(module.apply)(params, x), want, rtol=1e-10, atol=1e-10)


def test_conv_rejects_unknown_impl():
    with pytest.raises(ValueError, match="impl"):
        jax.eval_shape(Conv2D(2, 3, impl="fft").init, jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))


CLF = Classifier(alexnet_small(3, width=2, hidden=8))
# jitted once at module level, so the two cases below share their compilations
INIT_STACKED = jax.jit(init_stacked, static_argnums=(0, 2, 3, 4))
BATCHED, SINGLE = jax.jit(jax.vmap(CLF)), jax.jit(CLF)


@pytest.mark.parametrize("same_init", [True, False])
def test_stacked_networks_vmap_equals_loop(same_init):
    clf = CLF
    stacked = INIT_STACKED(clf, jax.random.PRNGKey(0), (8, 8, 3), 4, same_init)
    leaves = jax.tree_util.tree_leaves(stacked)
    assert all(leaf.shape[0] == 4 for leaf in leaves)
    first = jax.tree_util.tree_map(lambda l: l[0], stacked)
    second = jax.tree_util.tree_map(lambda l: l[1], stacked)
    differ = any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(first),
                                                          jax.tree_util.tree_leaves(second)))
    assert differ != same_init
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 6, 8, 8, 3))
    batched = BATCHED(stacked, x)
    single = SINGLE
    for t in range(4):
        one = jax.tree_util.tree_map(lambda l: l[t], stacked)
        np.testing.assert_allclose(batched[t], single(one, x[t]), rtol=1e-5, atol=1e-6)


def test_alexnet_module_is_the_family():
    assert isinstance(alexnet_224(), AlexNet) and isinstance(alexnet_small(), AlexNet)
