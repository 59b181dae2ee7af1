import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.cnn_blocks import BasicBlock, SmallCNN, Subsample2d, TinyResNet, batch_norm2d
from utils.digit_canvas import canvas_digits, enlarge, place

DT = torch.float64


def _randomise_bn(module):
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight), nn.init.normal_(m.bias)
            m.running_mean.normal_(), m.running_var.uniform_(0.5, 2.0)


def _torch_equivalent(block: BasicBlock) -> nn.Module:
    """The same block assembled from torch layers only, with copied weights."""
    class Ref(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(copy.deepcopy(block.conv1), copy.deepcopy(block.bn1), nn.ReLU(),
                                      copy.deepcopy(block.conv2), copy.deepcopy(block.bn2))
            self.short = copy.deepcopy(block.downsample) if block.downsample is not None else nn.Identity()

        def forward(self, x):
            return F.relu(self.main(x) + self.short(x))
    return Ref()


@pytest.mark.parametrize("c_in,c_out,stride", [(4, 4, 1), (4, 6, 2), (3, 5, 1)])
@pytest.mark.parametrize("training", [True, False])
def test_basic_block_from_scratch_equals_torch_layers(c_in, c_out, stride, training):
    torch.manual_seed(0)
    block = BasicBlock(c_in, c_out, stride).double()
    _randomise_bn(block)
    ref = _torch_equivalent(block).double()
    block.train(training), ref.train(training)
    block.scratch = True
    x = torch.randn(3, c_in, 7, 6, dtype=DT, requires_grad=True)
    ours = block(x)
    theirs = ref(x)
    torch.testing.assert_close(ours, theirs)
    assert ours.shape == (3, c_out, (7 - 1) // stride + 1, (6 - 1) // stride + 1)
    g = torch.randn(ours.shape, dtype=DT)
    gx_ours, gw_ours = torch.autograd.grad(ours, (x, block.conv1.weight), g)
    gx_ref, gw_ref = torch.autograd.grad(theirs, (x, ref.main[0].weight), g)
    torch.testing.assert_close(gx_ours, gx_ref)
    torch.testing.assert_close(gw_ours, gw_ref)
    if training:  # the running statistics were updated identically
        torch.testing.assert_close(block.bn1.running_mean, ref.main[1].running_mean)
        torch.testing.assert_close(block.bn1.running_var, ref.main[1].running_var)
    block.scratch = False
    torch.testing.assert_close(block.eval()(x), ref.eval()(x))


def test_batch_norm2d_and_shapes_and_errors():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).double()
    _randomise_bn(bn)
    x = torch.randn(4, 3, 5, 5, dtype=DT)
    ref = copy.deepcopy(bn)
    torch.testing.assert_close(batch_norm2d(x, bn), ref(x))
    with pytest.raises(ValueError, match=r"x must be of shape \(B, C=3, H, W\)"):
        batch_norm2d(torch.zeros(2, 4, 3, 3), bn)
    with pytest.raises(ValueError, match="C_in=4"):
        BasicBlock(4, 4)(torch.zeros(1, 3, 8, 8))
    assert Subsample2d(2)(torch.arange(16.0).view(1, 1, 4, 4))[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]
    for down in ("max", "avg", "subsample"):
        assert SmallCNN(down)(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert TinyResNet()(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="downsample must be one of"):
        SmallCNN("strided")


def test_canvas_digits_split_and_place():
    split = canvas_digits(val_size=300)
    assert split.X_train.shape == (1047, 1, 16, 16) and split.X_val.shape == (300, 1, 16, 16)
    assert split.X_test.shape == (450, 1, 16, 16)
    assert len(set(split.y_val.tolist())) == 10
    imgs = split.X_test[:3]
    centred = place(imgs, 32)
    moved = place(imgs, 32, (2, -3))
    torch.testing.assert_close(moved, torch.roll(centred, shifts=(2, -3), dims=(2, 3)))
    per_image = place(imgs, 32, torch.tensor([[0, 0], [1, 1], [-8, 8]]))
    torch.testing.assert_close(per_image[1], place(imgs[1:2], 32, (1, 1))[0])
    with pytest.raises(ValueError, match="off the"):
        place(imgs, 32, (9, 0))
    assert enlarge(torch.zeros(2, 1, 8, 8), 3).shape == (2, 1, 24, 24)


def test_batch_norm2d_with_cumulative_running_average():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(2, momentum=None).double()
    ref = copy.deepcopy(bn)
    for _ in range(3):
        x = torch.randn(4, 2, 3, 3, dtype=DT)
        torch.testing.assert_close(batch_norm2d(x, bn), ref(x))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
