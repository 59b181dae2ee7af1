"""Export the trained weights that the in-browser explorers need and that their chapter does not train.

The convolution explorer of chapter 3.2 ("Convolution") offers the learned first-layer kernels of
the book's ``DigitsCNN``, which the next notebook ("Pooling and CNNs") trains. This script trains
it with that notebook's recipe (seed 0, ``DigitsCNN(channels=(16, 32))``, ``digits_loaders(batch_size=32,
seed=0)``, ``fit(..., epochs=12, lr=2e-3)``, CPU) and writes ``utils/resources/widgets/digits_cnn_conv1.json``:
the 16 kernels ``(16, 1, 3, 3)`` and biases ``(16,)`` as exact float32 values, with the test accuracy.
The gating and attention explorers need no file: their chapters train the models and hand them
to the explorer in the same notebook.

Run from the repository root (about 10 s on a CPU):

    .venv/bin/python tools/export_widget_weights.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "utils" / "resources" / "widgets" / "digits_cnn_conv1.json"


def train_digits_cnn():
    """The trained ``DigitsCNN`` of chapter 3.2 and its final test accuracy."""
    from utils.conv import DigitsCNN
    from utils.data import digits_loaders
    from utils.env import seed_everything
    from utils.training import fit

    seed_everything(0)
    torch.manual_seed(0)
    model = DigitsCNN(channels=(16, 32))
    train_loader, test_loader = digits_loaders(batch_size=32, seed=0)
    history = fit(model, train_loader, test_loader, epochs=12, lr=2e-3, device="cpu", progress=False)
    return model.eval(), float(history.val_acc[-1])


def main() -> None:
    torch.set_num_threads(1)  # deterministic reductions, and kind to a shared machine
    model, accuracy = train_digits_cnn()
    conv1 = model.features[0]
    data = {
        "source": "utils.conv.DigitsCNN(channels=(16, 32)) trained by tools/export_widget_weights.py "
                  "(seed 0, digits_loaders(batch_size=32, seed=0), fit(epochs=12, lr=2e-3), CPU): "
                  "the recipe of chapters/03_algorithms/21_pooling_and_cnns.ipynb",
        "test_accuracy": round(accuracy, 4),
        "weight": conv1.weight.detach().numpy().astype(np.float32).tolist(),  # (16, 1, 3, 3)
        "bias": conv1.bias.detach().numpy().astype(np.float32).tolist(),  # (16,)
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: 16 kernels 3x3, test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
