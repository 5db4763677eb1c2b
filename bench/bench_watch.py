"""What ``watch(model)`` costs a training step on CPU.

For a small MLP and a small CNN (8x8 digit-sized inputs, batch 64, Adam, one thread), times
single training steps (forward, loss, backward, optimizer step) without watch and with
``watch(every=1)`` and ``watch(every=10)``, in interleaved blocks so that machine noise hits
every variant alike, and prints the median step time and its ratio to the unwatched median
(goals: at most 1.05x at every=10 and 1.5x at every=1), and the ratio of trimmed means,
which spreads the logged steps' cost over all steps.

    .venv/bin/python bench/bench_watch.py [--rounds 30] [--block 50] [--sdk]

``--sdk`` logs into a real offline ``client_sdk.Run`` (spooled to a temporary folder)
instead of a sink that drops the points, so the cost of ``run.log`` is included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from client_sdk import _torch_watch  # noqa: E402


class NullRun:
    """A run that drops what it is given (isolates the cost of the hooks)."""

    id = "bench"
    config: dict = {}

    def __init__(self) -> None:
        self.points = 0

    def log(self, data, step=None) -> None:
        self.points += len(data)

    def report_model_checks(self, findings) -> None:
        pass


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))


def time_steps(model, opt, x, y, n: int) -> list:
    loss_fn = nn.CrossEntropyLoss()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(time.perf_counter() - t0)
    return out


def bench(name: str, build, run, rounds: int, block: int) -> list:
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shape = (64, 64) if name == "mlp" else (64, 1, 8, 8)
    x, y = torch.randn(*shape), torch.randint(0, 10, (64,))
    time_steps(model, opt, x, y, 100)  # warm-up
    times = {"none": [], 1: [], 10: []}
    for r in range(rounds):
        order = list(times) if r % 2 == 0 else list(times)[::-1]
        for variant in order:
            if variant != "none":
                _torch_watch.watch(run, model, opt, every=variant)
            time_steps(model, opt, x, y, 10)  # untimed: the first forward's one-off checks
            times[variant] += time_steps(model, opt, x, y, block)
            if variant != "none":
                _torch_watch.unwatch(run, model)
    base, base_mean = statistics.median(times["none"]), trimmed_mean(times["none"])
    rows = []
    for variant, ts in times.items():
        med, mean = statistics.median(ts), trimmed_mean(ts)
        label = "no watch" if variant == "none" else f"every={variant}"
        rows.append((name, label, med * 1e6, med / base, mean / base_mean))
    return rows


def trimmed_mean(ts: list, cut: float = 0.02) -> float:
    """The mean without the slowest ``cut`` of the steps (other processes' interruptions):
    it includes the logged steps' cost, spread over all steps."""
    ts = sorted(ts)
    return statistics.fmean(ts[:max(1, int(len(ts) * (1 - cut)))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--block", type=int, default=100, help="steps per variant per round")
    ap.add_argument("--sdk", action="store_true", help="log into a real offline client_sdk run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = None
    if args.sdk:
        import client_sdk

        tmp = tempfile.TemporaryDirectory()
        run = client_sdk.Run("bench", name="bench-watch", mode="offline", spool_dir=tmp.name)
    else:
        run = NullRun()
    print(f"torch {torch.__version__}, 1 thread, batch 64, median of "
          f"{args.rounds * args.block} steps per variant, sink: "
          f"{'offline client_sdk.Run' if args.sdk else 'null run'}")
    print(f"{'model':<6} {'variant':<10} {'median step (us)':>17} {'ratio':>7} "
          f"{'mean ratio':>11}")
    for name, build in (("mlp", mlp), ("cnn", cnn)):
        for model_name, label, us, ratio, mean_ratio in bench(name, build, run, args.rounds,
                                                              args.block):
            print(f"{model_name:<6} {label:<10} {us:>17.1f} {ratio:>6.3f}x {mean_ratio:>10.3f}x")
    if args.sdk:
        run.finish(timeout=10)
        tmp.cleanup()


if __name__ == "__main__":
    main()
