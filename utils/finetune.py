"""Fine-tuning a pretrained encoder for sentence classification, and a bag-of-words baseline.

Explained in chapter 4 (``04_finetune_pretrained_encoder.ipynb``) and practised in the lab
``labs/05_finetune_encoder.ipynb``. The classifier is the packaged all-MiniLM-L6-v2 encoder
(:mod:`utils.pretrained`), mean pooling over the real tokens and a linear head:

    logits = W · mean_pool(encoder(tokens), attention_mask) + b        # (B, K)

Two ways to train it, as in Howard & Ruder (2018) and Devlin et al. (2019):

- **head only** (a linear probe): the encoder is frozen, so its token vectors are computed
  once and cached, and only the ``C × K`` head weights learn -- fast, needs few labels;
- **full fine-tuning**: every weight learns, with a small learning rate for the pretrained
  encoder (about 1e-5 to 1e-4) and a larger one for the new head.

Training reuses :func:`utils.training.fit` (``tqdm.auto`` progress, a :class:`History` of
per-epoch losses and accuracies): batches are ``(inputs, labels)`` with ``inputs`` a
tokenizer ``BatchEncoding``, which moves to a device like a tensor. The baseline,
:func:`tfidf_baseline`, is scikit-learn's ``TfidfVectorizer`` + ``LogisticRegression``.

Shapes: B batch, T tokens, C hidden size (384 for MiniLM), K classes, N examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

import torch
from torch import nn

from utils._validate import (Bool, Device, Dropout, Float, IntIn, Integer, Labels, NonNegFloat, PosFloat, PosInt, Seed,
                             Tensor, Texts, check, checked)
from utils.pretrained import MINILM_NAME, load_pretrained_encoder, mean_pool
from utils.training import History, fit

TokenizerOutput = Annotated[Mapping[str, torch.Tensor], "the tokenizer's output, a mapping with input_ids and "
                                                       "attention_mask of shape (B, T)"]

__all__ = [
    "MeanPoolHead",
    "EncoderClassifier",
    "TextBatches",
    "load_classifier",
    "train_classifier",
    "evaluate",
    "predict",
    "tfidf_baseline",
]


@checked
class MeanPoolHead(nn.Module):
    """Mean pooling over real tokens, dropout, then a linear layer: ``(B, T, C), (B, T) -> (B, K)``.

    The same pooling that all-MiniLM-L6-v2 was trained with (without the final L2
    normalisation, which a linear layer does not need). Returns logits: ``nn.CrossEntropyLoss``
    applies the log-softmax itself.
    """

    def __init__(self, hidden_size: PosInt, num_classes: IntIn(2), dropout: Dropout = 0.1) -> None:
        super().__init__()
        if not (isinstance(num_classes, int) and num_classes >= 2):
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, num_classes)

    @checked(dims={"C": "linear.in_features"})
    def forward(self, last_hidden_state: Float[Tensor, "B T C"],
                attention_mask: Integer[Tensor, "B T"] | Bool[Tensor, "B T"]) -> torch.Tensor:
        pooled = mean_pool(last_hidden_state, attention_mask)  # (B, C)
        return self.linear(self.dropout(pooled))  # (B, K)


@checked
class EncoderClassifier(nn.Module):
    """A pretrained encoder plus a head that maps its token vectors to class logits.

    Args:
        encoder: a Hugging Face encoder (``AutoModel``) whose output has ``last_hidden_state``.
        num_classes: K, for the default :class:`MeanPoolHead`; ignored when ``head`` is given.
        head: any module ``head(last_hidden_state (B, T, C), attention_mask (B, T)) -> (B, K)``
            (the lab plugs in the learner's own head).
        dropout: dropout of the default head.

    ``forward(inputs)`` takes the tokenizer's output (``input_ids``, ``attention_mask`` and
    optionally ``token_type_ids``, each ``(B, T)``) and returns logits ``(B, K)``.
    """

    def __init__(self, encoder: nn.Module, num_classes: IntIn(2) | None = None, *, head: nn.Module | None = None,
                 dropout: Dropout = 0.1) -> None:
        super().__init__()
        if head is None:
            if num_classes is None:
                raise ValueError("give num_classes (for the default MeanPoolHead) or a head module")
            head = MeanPoolHead(encoder.config.hidden_size, num_classes, dropout)
        self.encoder = encoder
        self.head = head

    @checked
    def forward(self, inputs: TokenizerOutput) -> torch.Tensor:
        if not isinstance(inputs, Mapping) or "input_ids" not in inputs or "attention_mask" not in inputs:
            raise TypeError("inputs must be the tokenizer's output, a mapping with input_ids and "
                            f"attention_mask of shape (B, T), got {type(inputs).__name__}")
        hidden = self.encoder(**inputs).last_hidden_state  # (B, T, C)
        return self.head(hidden, inputs["attention_mask"])  # (B, K)

    @checked
    def freeze_encoder(self, frozen: bool = True) -> EncoderClassifier:
        """Switch gradients of every encoder weight off (``True``) or on again (``False``)."""
        for p in self.encoder.parameters():
            p.requires_grad_(not frozen)
        return self


@checked
def load_classifier(num_classes: IntIn(2), name: str = MINILM_NAME, *, dropout: Dropout = 0.1, seed: Seed = 0,
                    device: Device | None = None):
    """``(tokenizer, EncoderClassifier)``: the packaged MiniLM (offline) with a fresh head
    initialised from ``seed``."""
    tokenizer, encoder = load_pretrained_encoder(name)
    torch.manual_seed(seed)
    model = EncoderClassifier(encoder, num_classes, dropout=dropout)
    if device is not None:
        model.to(device)
    return tokenizer, model


@checked
class TextBatches:
    """An iterable of ``(inputs, labels)`` mini-batches, tokenized on the fly.

    Each batch is padded to its own longest sentence and truncated at ``max_length`` tokens.
    With ``shuffle=True`` every pass draws a new order from a generator seeded once with
    ``seed`` (the same sequence of epochs on every run), and ``group_by_length`` then sorts
    each window of 4 batches by length, so that sentences of similar length share a batch:
    on the topic data set that cuts the padded tokens, and so the compute, by about a third.
    """

    def __init__(self, texts: Texts, labels: Labels, tokenizer: Callable, *, batch_size: PosInt = 16,
                 shuffle: bool = False, seed: Seed = 0, max_length: PosInt = 64,
                 group_by_length: bool = True) -> None:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings")
        if len(texts) != len(labels):
            raise ValueError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        if not texts:
            raise ValueError("texts must not be empty")
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.texts, self.labels = list(texts), torch.as_tensor(list(labels), dtype=torch.long)
        self.tokenizer, self.batch_size, self.shuffle, self.max_length = tokenizer, batch_size, shuffle, max_length
        self.generator = torch.Generator().manual_seed(seed)
        self.group_by_length = group_by_length and shuffle
        if self.group_by_length:  # token counts, truncated like the batches will be
            ids = tokenizer(self.texts, truncation=True, max_length=max_length)["input_ids"]
            self.lengths = torch.tensor([len(i) for i in ids])

    def __len__(self) -> int:
        return math.ceil(len(self.texts) / self.batch_size)

    def __iter__(self):
        n = len(self.texts)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.group_by_length:
            windows = order.split(4 * self.batch_size)
            order = torch.cat([w[self.lengths[w].argsort(stable=True)] for w in windows])
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            inputs = self.tokenizer([self.texts[i] for i in idx], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt")  # each (B, T)
            yield inputs, self.labels[idx]


class _CachedHidden:
    """Batches of cached encoder outputs, for training a head on a frozen encoder."""

    def __init__(self, hidden: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool, seed: int) -> None:
        self.hidden, self.mask, self.labels = hidden, mask, labels  # (N, T, C), (N, T), (N,)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        from transformers import BatchEncoding

        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield BatchEncoding({"last_hidden_state": self.hidden[idx], "attention_mask": self.mask[idx]}), \
                self.labels[idx]


class _HeadOnCache(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(inputs["last_hidden_state"], inputs["attention_mask"])


@torch.no_grad()
def _encode(model: EncoderClassifier, batches: TextBatches, device: torch.device):
    """Run the (frozen, eval-mode) encoder once over ``batches``: ``(N, T, C)``, ``(N, T)``, ``(N,)``
    with T the longest sentence (after truncation) of the whole set."""
    was_training = model.encoder.training
    model.encoder.eval()
    hidden, masks, labels = [], [], []
    for inputs, y in batches:
        inputs = inputs.to(device)
        hidden.append(model.encoder(**inputs).last_hidden_state)  # (B, T_b, C)
        masks.append(inputs["attention_mask"])
        labels.append(y)
    model.encoder.train(was_training)
    T = max(h.shape[1] for h in hidden)
    hidden = [nn.functional.pad(h, (0, 0, 0, T - h.shape[1])) for h in hidden]  # each (B, T, C), zeros appended
    masks = [nn.functional.pad(m, (0, T - m.shape[1])) for m in masks]  # each (B, T), 0 = padding
    return torch.cat(hidden), torch.cat(masks), torch.cat(labels)


class _BestWeights:
    """A :func:`utils.training.fit` callback that keeps a copy of ``module``'s weights whenever the
    validation loss reaches a new minimum, and :meth:`restore` puts the best copy back."""

    def __init__(self, module: nn.Module, active: bool) -> None:
        self.module, self.active = module, active
        self.loss, self.state = math.inf, None

    def __call__(self, epoch: int, history: History) -> None:
        if self.active and history.val_loss and history.val_loss[-1] < self.loss:
            self.loss = history.val_loss[-1]
            self.state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def restore(self) -> None:
        if self.state is not None:
            self.module.load_state_dict(self.state)


@checked
def train_classifier(model: EncoderClassifier, tokenizer: Callable, train_texts: Texts, train_labels: Labels,
                     val_texts: Texts | None = None, val_labels: Labels | None = None, *,
                     freeze_encoder: bool = False, epochs: PosInt = 3, lr: PosFloat = 5e-5,
                     head_lr: PosFloat | None = None, weight_decay: NonNegFloat = 0.01, batch_size: PosInt = 16,
                     max_length: PosInt = 64, seed: Seed = 0, device: Device | None = None, progress: bool = True,
                     restore_best: bool = False,
                     callbacks: Sequence[Callable[[int, History], object]] = ()) -> History:
    """Train ``model`` with AdamW and return the per-epoch :class:`History` (losses, accuracies).

    Args:
        freeze_encoder: ``True`` trains the head only: the encoder runs once (eval mode, no
            gradients) and its token vectors are cached, so an epoch costs milliseconds.
            ``False`` fine-tunes every weight.
        lr: learning rate of the encoder (full fine-tuning) or of the head (head only).
        head_lr: learning rate of the head during full fine-tuning (defaults to ``lr``); a
            freshly initialised head learns faster with a larger one.
        val_texts, val_labels: evaluated after every epoch (``History.val_loss``/``val_acc``).
            Use a validation set here, never the test set.
        seed: seeds the shuffling and dropout, so a run is repeatable.
        restore_best: select on the validation set: after the last epoch, put back the weights of
            the epoch with the lowest validation loss (the first such epoch,
            ``history.val_loss.index(min(history.val_loss)) + 1``), as early stopping with restore
            does (``load_best_model_at_end`` of the ``transformers`` Trainer). Needs validation data.
    """
    if not isinstance(model, EncoderClassifier):
        raise TypeError(f"model must be an EncoderClassifier, got {type(model).__name__}")
    if (val_texts is None) != (val_labels is None):
        raise ValueError("give both val_texts and val_labels, or neither")
    if restore_best and val_texts is None:
        raise ValueError("restore_best=True selects on the validation loss: give val_texts and val_labels")
    _check_labels(model, train_texts, train_labels, "train_labels")
    if val_labels is not None:
        _check_labels(model, val_texts, val_labels, "val_labels")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    torch.manual_seed(seed)  # dropout in the head (and in the encoder when it is fine-tuned)
    if freeze_encoder:
        model.freeze_encoder(True)

        def cached(texts, labels, shuffle):  # run the frozen encoder once, then serve its outputs in batches
            batches = TextBatches(texts, labels, tokenizer, batch_size=64, max_length=max_length)
            return _CachedHidden(*_encode(model, batches, device), batch_size, shuffle, seed)

        train = cached(train_texts, train_labels, True)
        val = None if val_texts is None else cached(val_texts, val_labels, False)
        optimizer = torch.optim.AdamW(model.head.parameters(), lr=lr, weight_decay=weight_decay)
        best = _BestWeights(model.head, restore_best)
        history = fit(_HeadOnCache(model.head), train, val, epochs=epochs, optimizer=optimizer, device=device,
                      progress=progress, callbacks=[best, *callbacks])
        best.restore()
        return history
    model.freeze_encoder(False)
    train = TextBatches(train_texts, train_labels, tokenizer, batch_size=batch_size, shuffle=True, seed=seed,
                        max_length=max_length)
    val = None if val_texts is None else TextBatches(val_texts, val_labels, tokenizer, batch_size=64,
                                                     max_length=max_length)
    optimizer = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": lr},
                                   {"params": model.head.parameters(), "lr": head_lr or lr}],
                                  weight_decay=weight_decay)
    best = _BestWeights(model, restore_best)
    history = fit(model, train, val, epochs=epochs, optimizer=optimizer, device=device, progress=progress,
                  callbacks=[best, *callbacks])
    best.restore()
    return history


def _check_labels(model: EncoderClassifier, texts: Sequence[str], labels: Sequence[int], name: str) -> None:
    """One label per text, each below the number of classes of the default head."""
    check(len(labels) == len(texts), name, f"one label per text ({len(texts)})", f"{len(labels)} labels")
    K = getattr(getattr(model.head, "linear", None), "out_features", None)
    top = int(max(labels))
    check(K is None or top < K, name, f"class indices in [0, {K}) for the model's {K} classes", f"label {top}")


@torch.no_grad()
@checked
def predict(model: EncoderClassifier, tokenizer: Callable, texts: Texts, *, batch_size: PosInt = 64,
            max_length: PosInt = 64) -> torch.Tensor:
    """Predicted class indices ``(N,)`` for ``texts`` (eval mode; the model's mode is restored)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds = [model(x.to(device)).argmax(dim=-1).cpu()
             for x, _ in TextBatches(texts, [0] * len(texts), tokenizer, batch_size=batch_size, max_length=max_length)]
    model.train(was_training)
    return torch.cat(preds)


@checked
def evaluate(model: EncoderClassifier, tokenizer: Callable, texts: Texts, labels: Labels, *,
             batch_size: PosInt = 64, max_length: PosInt = 64) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``texts`` (eval mode, no gradients)."""
    from utils.training import evaluate as evaluate_batches

    _check_labels(model, texts, labels, "labels")
    batches = TextBatches(texts, labels, tokenizer, batch_size=batch_size, max_length=max_length)
    return evaluate_batches(model, batches)


@checked
def tfidf_baseline(train_texts: Texts, train_labels: Labels, test_texts: Texts,
                   test_labels: Labels, *, C: PosFloat = 10.0, ngram_range: tuple[PosInt, PosInt] = (1, 2)):
    """The bag-of-words baseline: ``TfidfVectorizer`` (word uni- and bigrams, sublinear term
    frequency) + ``LogisticRegression``. Returns ``(fitted pipeline, test accuracy)``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise ValueError("each texts list must have as many labels: got "
                         f"{len(train_texts)}/{len(train_labels)} train, {len(test_texts)}/{len(test_labels)} test")
    pipe = make_pipeline(TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True),
                         LogisticRegression(C=C, max_iter=2000))
    pipe.fit(list(train_texts), list(train_labels))
    return pipe, float(pipe.score(list(test_texts), list(test_labels)))
