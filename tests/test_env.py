import os
import random

import numpy as np
import pytest
import torch

from utils import env


def test_seed_everything_repeats_all_generators():
    env.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    env.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError)])
def test_seed_everything_rejects_bad_seeds(bad, exc):
    with pytest.raises(exc, match="seed"):
        env.seed_everything(bad)


def test_get_device_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert env.get_device().type == expected
    assert env.get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer"):
        env.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            env.get_device("cuda")


def test_offline_switch_sets_hub_variables(monkeypatch):
    for var in ("LMHO_ONLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert env.is_online() is False
    env.set_online(True)
    assert env.is_online() and os.environ["HF_HUB_OFFLINE"] == "0"
    env.set_online(False)
    assert not env.is_online() and os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    with pytest.raises(TypeError, match="online"):
        env.set_online("yes")


def test_in_colab_false_here(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert env.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release")
    assert env.in_colab() is True


def test_setup_notebook_is_reproducible(monkeypatch):
    monkeypatch.setenv("LMHO_ONLINE", "0")
    device = env.setup_notebook(7)
    first = torch.rand(3)
    env.setup_notebook(7)
    assert torch.equal(first, torch.rand(3))
    assert device.type in {"cpu", "cuda"}


def test_env_check_reports_every_tested_package():
    from utils import env_check

    rows = env_check.check_environment()
    assert {r[1] for r in rows} == set(env_check.TESTED)
    assert all(r[0] in {"OK", "DIFF", "FAIL", "MISSING"} for r in rows)
    assert dict((r[1], r[0]) for r in rows)["torch"] == "OK"
    assert env_check.main() == 0
