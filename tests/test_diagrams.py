import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import utils.diagrams as D  # noqa: E402
from utils.attention import scaled_dot_product_attention  # noqa: E402
from utils.diagrams.conv import Layer1d  # noqa: E402

DRAWERS = ["draw_gru_cell", "draw_lstm_cell", "draw_transformer_block", "draw_encoder_decoder", "draw_multi_head",
           "draw_multichannel_conv", "draw_im2col", "draw_computational_graph", "draw_receptive_field", "draw_qkv"]


@pytest.mark.parametrize("name", DRAWERS)
def test_every_diagram_draws_a_figure(name):
    fig = getattr(D, name)()
    assert isinstance(fig, plt.Figure)
    fig.canvas.draw()  # renders every artist, mathtext included
    assert len(fig.axes) >= 1 and any(ax.patches or ax.lines or ax.texts for ax in fig.axes)
    plt.close(fig)


def test_the_package_exports_every_drawer():
    assert set(DRAWERS) <= set(D.__all__)


def test_computational_graph_values_are_the_chain_rule():
    v = D.graph_example(x=1.5, w=0.8, b=-0.5, y=1.0)
    z = 0.8 * 1.5 - 0.5
    h = torch.tanh(torch.tensor(z, dtype=torch.float64)).item()
    assert v["z"][0] == pytest.approx(z) and v["h"][0] == pytest.approx(h)
    dh = 2 * (h - 1.0)
    assert v["h"][1] == pytest.approx(dh)
    assert v["z"][1] == pytest.approx(dh * (1 - h ** 2))
    assert v["w"][1] == pytest.approx(dh * (1 - h ** 2) * 1.5) and v["x"][1] == pytest.approx(dh * (1 - h ** 2) * 0.8)
    assert v["L"][1] == 1.0


def test_im2col_example_equals_conv2d_and_has_one_column_per_output():
    ex = D.im2col_example()
    assert ex.cols.shape == (2 * 2 * 2, 4) and ex.out.shape == (2, 4)
    torch.testing.assert_close(ex.y, F.conv2d(ex.x[None], ex.w)[0])
    with pytest.raises(ValueError, match="x must be"):
        D.im2col_example(torch.zeros(3, 3), torch.zeros(1, 1, 2, 2))


def test_receptive_field_recursion_matches_autograd():
    stacks = {"convs": [Layer1d("conv", 3, 1, 1)] * 3,
              "conv-pool": [Layer1d("conv", 3, 1, 1), Layer1d("pool", 2, 2), Layer1d("conv", 3, 1, 1),
                            Layer1d("pool", 2, 2)],
              "dilated-ish": [Layer1d("conv", 5, 2, 2), Layer1d("conv", 3, 1, 1)]}
    for layers in stacks.values():
        x = torch.ones(1, 1, 64, requires_grad=True)
        h = x
        for layer in layers:  # positive weights so that no gradient cancels
            h = F.conv1d(h, torch.ones(1, 1, layer.k), stride=layer.s, padding=layer.p)
        h[0, 0, h.shape[-1] // 2].backward()
        support = (x.grad[0, 0] != 0).nonzero().flatten()
        r, _ = D.receptive_field(layers)[-1]
        assert int(support.max() - support.min() + 1) == r
    assert [r for r, _ in D.receptive_field(stacks["conv-pool"])] == [3, 4, 8, 10]


def test_qkv_and_multi_head_numbers_come_from_the_library():
    ex = D.qkv_example()
    out, w = scaled_dot_product_attention(ex.q[None], ex.K, ex.V)
    torch.testing.assert_close(ex.output, out[0])
    torch.testing.assert_close(ex.weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    shapes = D.multi_head_shapes(2, 5, 16, 4)
    assert shapes == {"q": (2, 5, 16), "split": (2, 5, 4, 4), "heads": (2, 4, 5, 4), "weights": (2, 4, 5, 5),
                      "merged": (2, 5, 16)}
    with pytest.raises(ValueError, match="divisible"):
        D.multi_head_shapes(C=10, num_heads=4)
