"""A small GRU (or LSTM) on a generated sequence task, streamed to Losslens.

Each example is 16 steps of 4 random numbers; the label is the channel whose sum over the
sequence is largest, so the network has to accumulate evidence over time.

    python examples/rnn_sequence.py                   # healthy, a few seconds
    python examples/rnn_sequence.py --cell lstm --lr 0.3
    python examples/rnn_sequence.py --unscaled-inputs --activation sigmoid
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sibling helpers; the SDK of this checkout

import _common  # noqa: E402

N_CLASSES = 4
SEQ_LEN = 16
VAL_SIZE = 500


def make_data(n: int, seed: int, scaled: bool) -> tuple:
    """(x, y): x of shape (n, SEQ_LEN, N_CLASSES), y the argmax of the sums over time."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, SEQ_LEN, N_CLASSES, generator=g)
    y = x.sum(dim=1).argmax(dim=1)
    if not scaled:
        x = x * 20.0 + 50.0  # same labels, raw units far from mean 0 / std 1
    return x, y


class SequenceClassifier(nn.Module):
    """A recurrent encoder, then a small MLP head on the last hidden state."""

    def __init__(self, cell: str, activation: str, hidden: int = 32) -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(N_CLASSES, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden),
                                  _common.ACTIVATIONS[activation](),
                                  nn.Linear(hidden, N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def run(argv=None) -> dict:
    ap = _common.parser(__doc__.splitlines()[0], train_size=2000, epochs=8, lr=3e-3,
                        project="sequences")
    ap.add_argument("--cell", choices=["gru", "lstm"], default="gru")
    args = ap.parse_args(argv)
    if args.fast:
        args.epochs, args.pace = min(args.epochs, 2), 0.0
    torch.manual_seed(args.seed)
    scaled = not args.unscaled_inputs
    x_tr, y_tr = make_data(args.train_size, args.seed, scaled)
    x_va, y_va = make_data(VAL_SIZE, args.seed + 10_000, scaled)
    model = SequenceClassifier(args.cell, args.activation)
    config = {"model": args.cell, "n_classes": N_CLASSES, "seq_len": SEQ_LEN}
    return _common.main(args, model, (x_tr, y_tr, x_va, y_va), config)


if __name__ == "__main__":
    run()
