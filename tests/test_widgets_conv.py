import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from utils.conv_explorer import KERNELS, conv_step, parse_kernel, pool_views
from utils.widgets.conv import PATTERNS, conv_frames, make_conv_widget, plot_conv_step, plot_pooling


def test_conv_step_matches_conv2d_at_every_position():
    img = np.random.default_rng(0).random((7, 8))
    k = KERNELS["sharpen"]
    full = F.conv2d(torch.tensor(img)[None, None], torch.tensor(k)[None, None], stride=2, padding=1)[0, 0].numpy()
    n = conv_step(img, k, stride=2, padding=1).num_positions
    assert n == full.size
    for pos in range(n):
        step = conv_step(img, k, stride=2, padding=1, position=pos)
        assert step.total == pytest.approx(full.flat[pos])
        assert np.isnan(step.output).sum() == n - pos - 1  # the map fills in row-major order
        assert step.window.shape == (3, 3) and step.products.sum() == pytest.approx(step.total)


def test_parse_kernel_and_bad_input():
    assert parse_kernel("1 0 -1; 2, 0, -2; 1 0 -1").shape == (3, 3)
    with pytest.raises(ValueError, match="square"):
        parse_kernel("1 2; 3")
    with pytest.raises(ValueError, match="numbers"):
        parse_kernel("a b; c d")
    with pytest.raises(ValueError, match="position"):
        conv_step(np.zeros((5, 5)), KERNELS["identity"], position=9)
    with pytest.raises(ValueError, match="image"):
        conv_step(np.zeros(5), KERNELS["identity"])
    with pytest.raises(ValueError, match="larger than the padded"):
        conv_step(np.zeros((2, 2)), KERNELS["identity"])


def test_pooling_views_and_plots_do_not_mutate():
    fm = np.arange(16.0).reshape(4, 4)
    mx, av = pool_views(fm)
    assert mx.tolist() == [[5, 7], [13, 15]] and av.tolist() == [[2.5, 4.5], [10.5, 12.5]]
    step = conv_step(PATTERNS["drawn cross"], KERNELS["blur (box)"], padding=1, position=10)
    before = step.padded.copy()
    fig = plot_conv_step(step)
    assert len(fig.axes) == 4 and np.array_equal(step.padded, before)
    assert len(plot_pooling(step.full_output).axes) == 3
    figs, labels = conv_frames(PATTERNS["drawn cross"], KERNELS["identity"], num_frames=5)
    assert len(figs) == len(labels) == 5 and labels[0].startswith("position 0")
    plt.close("all")


def test_widget_builds_without_a_browser():
    ui = make_conv_widget({"mine": np.eye(6)})
    assert "mine" in ui.children[0].children[0].options
    plt.close("all")


def test_conv_explorer_builder_embeds_inputs_and_learned_kernels():
    import json

    from utils.widgets.conv import conv_explorer, explorer_images, learned_kernels

    learned = learned_kernels()
    assert len(learned) == 16 and all(k.shape == (3, 3) for k, _ in learned.values())
    data = json.loads((__import__("pathlib").Path(__file__).parents[1] / "utils/resources/widgets/digits_cnn_conv1.json").read_text())
    assert data["test_accuracy"] >= 0.95  # the exported network is the trained one, not an initialisation
    mine = np.eye(8)
    ex = conv_explorer({"mine": mine}, inputs=("mine",), c_in=2, c_out=3, kernels=[["1 0; 0 1"]], stride=2)
    cfg = ex.config
    assert dict(cfg["images"])["mine"] == mine.ravel().tolist()
    assert cfg["defaults"]["inputs"][0] == "mine" and cfg["defaults"]["c_out"] == 3
    assert {p[0] for p in cfg["presets"]} >= set(learned) | set(KERNELS)
    assert "LMHO.mount_conv" in ex._repr_html_()
    assert list(explorer_images())[-1] == "blank (draw your own)"
    with pytest.raises(ValueError, match="shape"):
        conv_explorer({"big": np.zeros((9, 9))})
    with pytest.raises(ValueError, match="c_out"):
        conv_explorer(c_out=5)
    with pytest.raises(ValueError, match="square"):
        conv_explorer(kernels=[["1 2; 3"]])
    with pytest.raises(ValueError, match="inputs"):
        conv_explorer(inputs=("no such image",))


def test_step_panels_write_readable_numbers_and_no_negative_zero():
    import matplotlib.pyplot as plt
    import numpy as np

    from utils.conv_explorer import conv_step
    from utils.widgets.conv import plot_conv_step

    image = np.zeros((6, 6))
    image[:, 3:] = 1.0  # a vertical edge
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    fig = plot_conv_step(conv_step(image, sobel, position=0, stride=1, padding=1))
    kernel_ax, products_ax = fig.axes[1], fig.axes[2]
    colour = {t.get_text(): t.get_color() for t in kernel_ax.texts}
    assert colour["-2"] == "white" and colour["2"] == "white" and colour["0"] == "black"
    assert not any(t.get_text().startswith("-0") for t in products_ax.texts)
    plt.close(fig)
