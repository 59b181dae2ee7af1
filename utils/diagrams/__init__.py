"""Diagrams drawn by code (matplotlib), so that they stay true to the text and the code they
explain: each ``draw_*`` function returns a :class:`matplotlib.figure.Figure` and is tested to draw
without error; where a diagram shows numbers or shapes, a companion function computes them with
the book's own code (tested too).

Used in chapter 3: the computational graph (3.1), multi-channel convolution, im2col and receptive
fields (3.2), the GRU and LSTM cells (3.3), queries/keys/values, multi-head attention, the
Transformer block and the encoder-decoder (3.4).
"""

from utils.diagrams.attention import QKVExample, draw_multi_head, draw_qkv, multi_head_shapes, qkv_example
from utils.diagrams.cells import draw_gru_cell, draw_lstm_cell
from utils.diagrams.conv import (Layer1d, draw_im2col, draw_multichannel_conv, draw_receptive_field, im2col_example,
                                 receptive_field)
from utils.diagrams.graph import draw_computational_graph, graph_example
from utils.diagrams.transformer import draw_encoder_decoder, draw_transformer_block

__all__ = [
    "draw_gru_cell", "draw_lstm_cell",
    "draw_computational_graph", "graph_example",
    "draw_multichannel_conv", "draw_im2col", "im2col_example", "draw_receptive_field", "receptive_field", "Layer1d",
    "draw_qkv", "qkv_example", "QKVExample", "draw_multi_head", "multi_head_shapes",
    "draw_transformer_block", "draw_encoder_decoder",
]
