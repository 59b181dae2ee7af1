import pytest

from utils.landmarks import growth_per_year, load_landmark_models


def test_table_states_the_famous_figures_correctly():
    models = {m.model: m for m in load_landmark_models()}
    assert models["GPT-3"].parameters == 175_000_000_000 and models["GPT-3"].year == 2020
    assert models["BERT-Large"].parameters == 340_000_000
    assert models["LeNet-5"].parameters == 60_000
    assert all(m.source for m in models.values())
    assert "GPT-4" not in models  # never published


def test_growth_per_year():
    models = load_landmark_models()
    g = growth_per_year(models, 2012, 2024)
    assert 2.0 < g < 10.0
    with pytest.raises(ValueError, match="start"):
        growth_per_year(models, 2020, 2012)
    with pytest.raises(ValueError, match="at least two"):
        growth_per_year(models, 1990, 1991)
