import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from utils.widgets.static import MAX_FRAMES, figure_to_data_uri, frame_player


def _fig(i):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, i])
    return fig


def test_frame_player_embeds_every_frame_and_caption():
    out = frame_player([_fig(i) for i in range(3)], labels=["a", "b", "c"], title="demo")
    html = out.data
    assert html.count("<img") == 3 and html.count("data:image/png;base64,") == 3
    assert 'max="2"' in html and "demo" in html and "<script>" in html
    assert plt.get_fignums() == []  # figures were closed


def test_frame_player_bad_input():
    with pytest.raises(ValueError, match="frames"):
        frame_player([])
    with pytest.raises(ValueError, match="frames"):
        frame_player(["data:image/png;base64,AA"] * (MAX_FRAMES + 1))
    with pytest.raises(ValueError, match="labels"):
        frame_player(["data:image/png;base64,AA"], labels=["a", "b"])
    with pytest.raises(ValueError, match="data:image"):
        frame_player(["http://example.com/x.png"])
    with pytest.raises(TypeError, match="fig"):
        figure_to_data_uri("not a figure")
