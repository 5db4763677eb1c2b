"""System signals from a daemon thread: step time, CPU, memory, GPU (stdlib only).

Every ``interval`` seconds :class:`SystemMonitor` logs, at the training step it reads from
``step_fn``:

- ``sys/step_time`` (seconds per step) and ``sys/steps_per_sec``, averaged over the interval
  (absent when no step was taken in it);
- ``sys/cpu_percent``: this process's CPU time (user + system, all threads) over wall time,
  in percent (more than 100 when several cores work);
- ``sys/rss_mb``: resident memory from ``/proc/self/statm`` (elsewhere the peak RSS from
  ``resource``);
- whatever ``gpu_fn`` returns (the torch watcher passes ``torch.cuda`` memory figures), and
  ``sys/gpu_util`` (percent) when ``pynvml`` is importable and a GPU index is given.

Sampling never touches the training thread, and a failing sample is skipped, never raised.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

logger = logging.getLogger("client_sdk")

#: default seconds between two samples
DEFAULT_INTERVAL = 5.0


def rss_mb() -> float | None:
    """Resident set size of this process in MiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    except (ImportError, OSError):
        return None


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _nvml_util(index: int) -> Callable[[], float] | None:
    """A callable returning the GPU's utilisation percent, or None without NVML."""
    try:
        import pynvml  # optional dependency

        pynvml.nvmlInit()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if ids and index < len(ids) and ids[index].isdigit():
            index = int(ids[index])
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # noqa: BLE001 - NVML is optional and may be broken
        return None
    return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)


class SystemMonitor:
    """A daemon thread that logs system signals to ``run`` every ``interval`` seconds."""

    def __init__(self, run: Any, step_fn: Callable[[], int], interval: float = DEFAULT_INTERVAL,
                 gpu_fn: Callable[[], dict[str, float]] | None = None,
                 gpu_index: int | None = None, prefix: str = "") -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.run = run
        self.interval = float(interval)
        self._step_fn = step_fn
        self._gpu_fn = gpu_fn
        self._gpu_index = gpu_index
        self._util: Callable[[], float] | None = None
        self._prefix = prefix
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple | None = None

    def start(self) -> None:
        """Start the thread (once); the first sample comes after one interval."""
        if self._thread is not None:
            return
        self._last = (time.monotonic(), _cpu_seconds(), self._step_fn())
        self._thread = threading.Thread(target=self._loop, name="losslens-system", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread; waits at most ``timeout`` seconds for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        if self._gpu_index is not None:
            self._util = _nvml_util(self._gpu_index)
        while not self._stop.wait(self.interval):
            try:
                step, values = self.sample()
                if values:
                    self.run.log(values, step=step)
            except Exception:  # noqa: BLE001 - a monitor must never take the run down
                logger.debug("losslens: system sample failed", exc_info=True)

    def sample(self) -> tuple:
        """One sample: ``(step, {key: value})`` since the previous sample (or start)."""
        now, cpu, step = time.monotonic(), _cpu_seconds(), self._step_fn()
        if self._last is None:
            self._last = (now, cpu, step)
            return step, {}
        t0, cpu0, step0 = self._last
        self._last = (now, cpu, step)
        wall = now - t0
        out: dict[str, float] = {}
        if wall > 0:
            out["sys/cpu_percent"] = 100.0 * (cpu - cpu0) / wall
            if step > step0:
                out["sys/steps_per_sec"] = (step - step0) / wall
                out["sys/step_time"] = wall / (step - step0)
        rss = rss_mb()
        if rss is not None:
            out["sys/rss_mb"] = rss
        if self._gpu_fn is not None:
            try:
                out.update(self._gpu_fn())
            except Exception:  # noqa: BLE001
                logger.debug("losslens: GPU memory sample failed", exc_info=True)
        if self._util is not None:
            try:
                out["sys/gpu_util"] = self._util()
            except Exception:  # noqa: BLE001
                self._util = None
        if self._prefix:
            out = {self._prefix + k: v for k, v in out.items()}
        return step, out
