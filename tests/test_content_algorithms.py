"""Guard against the return of wrong statements fixed in chapters 1-3 and their appendix pages.

An expert review (December 2026, Part A) found factual errors in chapters 1-3, the misconceptions
page and the glossary; they were verified and fixed. This test reads the *sources* the book is built
from (markdown and code cells of the notebooks, the glossary CSVs) and fails if a wrong phrasing comes
back, the way ``test_glossary.py`` guards the terms. A few checks are structural (the displayed GRU
candidate is the implemented one; no chapter of 1-3 trains with the test set as validation set), and
one is numerical (the learning rates of chapter 3.1's exercise 1 really straddle the divergence
threshold).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(
    [*CHAPTERS.glob("01_background/*.ipynb"), *CHAPTERS.glob("02_concepts/*.ipynb"),
     *CHAPTERS.glob("03_algorithms/*.ipynb"),
     CHAPTERS / "appendix" / "misconceptions.ipynb", CHAPTERS / "appendix" / "notation.ipynb"]
)
GLOSSARY = sorted((ROOT / "utils" / "resources" / "glossary").glob("*.csv"))


def _squash(text: str) -> str:
    """Whitespace collapsed to single spaces, so that a phrase matches across line breaks."""
    return re.sub(r"\s+", " ", text)


def _cells(path: Path, kinds: tuple[str, ...] = ("markdown", "code")) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [_squash("".join(c["source"])) for c in cells if c["cell_type"] in kinds]


def _sources() -> dict[str, str]:
    """Every guarded source as one squashed string: notebooks (cell sources, no outputs) and CSVs."""
    texts = {str(p.relative_to(ROOT)): "\n".join(_cells(p)) for p in NOTEBOOKS}
    texts.update({str(p.relative_to(ROOT)): _squash(p.read_text(encoding="utf-8")) for p in GLOSSARY})
    return texts


# (why it is wrong, a regular expression for the wrong phrasing; matched case-insensitively)
WRONG = [
    ("E1: the (1 - z) h_{t-1} + z h~ form is Chung et al.'s; Cho et al. (2014) write z h_{t-1} + (1 - z) h~",
     r"as Cho et al\.? \(2014\) did"),
    ("E1: the glossary credited the book's GRU form to Cho et al.",
     r"z_t\s*·\s*h̃_t \(Cho et al\.?,? 2014\)"),
    ("E1: the FAQ-style attribution of the book's form to Cho et al.",
     r"like Cho et al\.?,? 2014\) writes h_t = \(1 - z\)"),
    ("E1b: the reset gate's placement (before or after U) gives different functions",
     r"changes nothing of substance"),
    ("E1b: the book displays the implemented candidate, reset applied after U",
     r"\\tilde h_t &= \\tanh\\!\\left\(W x_t \+ U \(r_t \\odot h_\{t-1\}\) \+ b\\right\) && \\text\{candidate"),
    ("a GRU has two gates (update, reset) and a candidate, not three gates",
     r"three gates instead of four"),
    ("an LSTM has three gates and a candidate, not four gates",
     r"\(four gates, each with"),
    ("E2: in the clipping demo the forward signal grew and saturated tanh; the demo now has a zero input",
     r"stays in its linear range"),
    ("E2: the exploded gradient is not proportional to the impulse (it sits in the bias gradient)",
     r"times the impulse's size"),
    ("E3: sigma_max > 1 is necessary, not sufficient, for exploding gradients",
     r"above 1 it grows geometrically and \**explodes"),
    ("E4: the noise variance is not a floor for the training loss (least squares goes below it)",
     r"best possible loss is known|noise floor|\(the noise variance, 0\.25\)"),
    ("E5: none of 0.01, 0.1, 0.6 diverges on chapter 3.1's regression (threshold about 0.82)",
     r"learning rates 0\.01, 0\.1 and 0\.6"),
    ("E6: classifying the same ten digits is not a task the network was not trained on",
     r"helps even for tasks the network was not trained on"),
    ("E7: pre-LN is less sensitive to warm-up; large pre-LN models still warm up",
     r"trains stably without a learning-rate warm-up"),
    ("E8: a reinforcement learner gets inputs (observations), not the right answers",
     r"reinforcement learning\** it gets neither"),
    ("E9: mixed precision is 16-bit compute with fp32 master weights, not a cast",
     r"Mixed precision\** keeps a tensor in 16-bit"),
    ("E9: bf16 stores 7 mantissa bits (8 significant), about 2.4 decimal digits",
     r"8 bits of mantissa, about 3 decimal digits"),
    ("E10: the last sinusoidal frequency is 10000^(-(C-2)/C), not 1/10000",
     r"to \$1/10000\$ for the last pair"),
    ("E11: initialisation was not taught in the chapter the sentence pointed to",
     r"ReLU activations and careful initialisation \(chapter 3\.1\), residual"),
    ("E12: 2.3's network differs (32 hidden units) and did not reach 97 %",
     r"reaches about 97 ?% \(chapter 2\.3\)"),
    ("E13: no selection on the test set (early stopping from the test curve)",
     r"best test loss|test loss: best|from the curves, at which epoch would you stop, and what test accuracy"),
    ("E14: layer 1 of the reversal model mostly attends to its own position, measured",
     r"attends by content rather than by position"),
    ("E14: calibration is measured in chapter 3.1, not asserted",
     r"mainly buys better-calibrated probabilities"),
    ("E16: ConvNeXt-era CNNs remain competitive with Vision Transformers",
     r"until Vision Transformers\."),
    ("E16: the widget's custom kernel starts as Prewitt, not Sobel",
     r"type your own 3×3 values as `1 0 -1; 2 0 -2; 1 0 -1`"),
]


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    texts = _sources()
    assert len(texts) >= 20  # every notebook of chapters 1-3, two appendix pages, the glossary
    return texts


@pytest.mark.parametrize("why, pattern", WRONG, ids=[w[0].split(":")[0] + f"-{i}" for i, w in enumerate(WRONG)])
def test_wrong_statement_has_not_come_back(sources, why, pattern):
    found = [name for name, text in sources.items() if re.search(pattern, text, flags=re.IGNORECASE)]
    assert not found, f"{why}: the wrong phrasing /{pattern}/ is back in {found}"


def test_every_pattern_would_catch_the_old_text():
    """Each pattern matches the wrong sentence it guards against (so that a typo cannot disarm it)."""
    old = [
        "as Cho et al. (2014) did:", "h_t = (1 − z_t)·h_{t−1} + z_t·h̃_t (Cho et al., 2014).",
        "Chapter 3.3 (like Cho et al., 2014) writes h_t = (1 - z) * h_{t-1}",
        "apply it before $U$; this changes nothing of substance)",
        r"\tilde h_t &= \tanh\!\left(W x_t + U (r_t \odot h_{t-1}) + b\right) && \text{candidate state}\\",
        "(three gates instead of four)", "(four gates, each with input and recurrent weights",
        "(so that $\\tanh$ stays in its linear range)", "times the impulse's size: a norm of tens",
        "above 1 it grows geometrically and **explodes**", "where the best possible loss is known",
        "learning rates 0.01, 0.1 and 0.6 on the regression",
        "helps even for tasks the network was not trained on", "trains stably without a learning-rate warm-up",
        "In **reinforcement learning** it gets neither", "**Mixed precision** keeps a tensor in 16-bit floats",
        "only 8 bits of mantissa, about 3 decimal digits", "to $1/10000$ for the last pair",
        "ReLU activations and careful initialisation (chapter 3.1), residual connections",
        "reaches about 97 % (chapter 2.3)", "test loss: best 0.407", "attends by content rather than by position",
        "mainly buys better-calibrated probabilities", "until Vision Transformers.",
        "type your own 3×3 values as `1 0 -1; 2 0 -2; 1 0 -1`",
    ]
    for (why, pattern) in WRONG:
        assert any(re.search(pattern, _squash(s), flags=re.IGNORECASE) for s in old), why


def _notebook(name: str) -> list[str]:
    return _cells(next(p for p in NOTEBOOKS if p.name == name))


def test_gru_displays_the_implemented_candidate_and_credits_the_right_papers():
    md = "\n".join(_notebook("31_gates_gru_lstm.ipynb"))
    # the displayed candidate is what utils.rnn.gru_cell computes: tanh(i_n + r * (U h + b_hn))
    assert r"\tilde h_t &= \tanh\!\left(W x_t + b + r_t \odot (U h_{t-1} + b_U)\right)" in md
    assert "chung2014empirical" in md and "d2l" in md
    assert re.search(r"Cho et al\. \{cite\}`cho2014gru`, and after them PyTorch and d2l, write \$h_t = z_t", md)
    glossary = _squash((ROOT / "utils" / "resources" / "glossary" / "03c_rnn.csv").read_text(encoding="utf-8"))
    assert "as in Chung et al. (2014)" in glossary
    assert "Cho et al. (2014), PyTorch and d2l write h_t = z_t·h_{t−1} + (1 − z_t)·h̃_t" in glossary
    misc = "\n".join(_notebook("misconceptions.ipynb"))
    assert "as Chung et al. (2014) did" in misc


def test_gru_candidate_in_the_book_is_the_one_utils_computes():
    from utils.rnn import CellWeights, gru_cell

    torch.manual_seed(0)
    B, I, H = 3, 4, 5
    W_ih, W_hh = torch.randn(3 * H, I, dtype=torch.float64), torch.randn(3 * H, H, dtype=torch.float64)
    b_ih, b_hh = torch.randn(3 * H, dtype=torch.float64), torch.randn(3 * H, dtype=torch.float64)
    x, h = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    _, gates = gru_cell(x, h, CellWeights(W_ih, W_hh, b_ih, b_hh), return_gates=True)
    W, U, b, b_U = W_ih[2 * H:], W_hh[2 * H:], b_ih[2 * H:], b_hh[2 * H:]  # rows [r, z, n]
    r = gates["r"]
    displayed = torch.tanh(x @ W.T + b + r * (h @ U.T + b_U))  # the book's equation, reset after U
    variant = torch.tanh(x @ W.T + (r * h) @ U.T + b + b_U)  # the variant it names, reset before U
    torch.testing.assert_close(gates["candidate"], displayed)
    assert not torch.allclose(gates["candidate"], variant)


def test_chapters_1_to_3_never_validate_on_the_test_set():
    """`fit(model, train, test_loader)` would make every curve a test curve and every choice a test choice."""
    offenders = []
    for path in NOTEBOOKS:
        for src in _cells(path, kinds=("code",)):
            if re.search(r"\bfit\(\s*\w+\s*,\s*\w+\s*,\s*test_\w+", src):
                offenders.append(f"{path.name}: fit(..., test_...)")
            for call in re.findall(r"digits_loaders\([^)]*\)", src):
                if "val_size" not in call:
                    offenders.append(f"{path.name}: {call} has no validation split")
    assert not offenders, offenders


def test_notation_appendix_lists_every_reused_letter():
    text = "\n".join(_notebook("notation.ipynb"))
    table = text[text.index("Letters with more than one meaning"):]
    for letter in ("A, B", "C", "D", "d", "E", "H", "K", "L", "N", "T", "W"):
        assert f"| {letter} |" in table, f"letter {letter} missing from the notation appendix"
    for meaning in ("training compute", "training tokens", "number of experts", "hidden size", "the loss",
                    "number of model parameters"):
        assert meaning in table


def _chapter_10_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The regression of chapter 3.1 (10_gradient_descent_and_backprop), rebuilt from its own code."""
    src = "\n".join(_notebook("10_gradient_descent_and_backprop.ipynb"))
    assert "g = torch.Generator().manual_seed(0)" in src and "N, D = 2000, 20" in src
    g = torch.Generator().manual_seed(0)
    N, D = 2000, 20
    X = torch.randn(N, D, generator=g)
    w_true = torch.randn(D, generator=g)
    y = X @ w_true + 0.5 * torch.randn(N, generator=g)
    return X.double(), y.double()


def test_chapter_10_floor_is_the_least_squares_loss_and_exercise_1_rates_straddle_the_threshold():
    X, y = _chapter_10_data()
    N = len(y)
    src = "\n".join(_notebook("10_gradient_descent_and_backprop.ipynb"))
    assert "torch.linalg.lstsq" in src and "axhline(floor" in src
    floor = ((X @ torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1) - y) ** 2).mean().item()
    assert floor < 0.25  # below the noise variance: the old "floor" was not one

    rates = re.search(r"learning rates ([0-9., and]+) on the regression", src)
    assert rates, "exercise 1 of chapter 3.1 must name its learning rates"
    rates = [float(r) for r in re.findall(r"\d+\.\d+", rates.group(1))]
    threshold = 2 / torch.linalg.eigvalsh(2 / N * X.T @ X).max().item()  # 2 / largest Hessian eigenvalue

    def final_loss(lr: float, steps: int = 40) -> float:
        w = torch.zeros(X.shape[1], dtype=torch.float64)
        for _ in range(steps):
            w -= lr * 2 * X.T @ (X @ w - y) / N
        return ((X @ w - y) ** 2).mean().item()

    start = (y ** 2).mean().item()
    assert any(r > threshold for r in rates) and any(r < threshold for r in rates), (rates, threshold)
    for r in rates:
        diverged = final_loss(r) > 10 * start
        assert diverged == (r > threshold), f"rate {r}: diverged {diverged}, threshold {threshold:.3f}"
