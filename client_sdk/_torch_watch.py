"""``watch(model)`` and ``unwatch()``: the entry points ``Run.watch``/``Run.unwatch`` import.

A registry maps each watched model to its :class:`~client_sdk._torch_hooks.Watch`; watching a
model again replaces its watch, and a model that is garbage-collected drops out (the registry
and the hooks hold the model, its parameters and the optimizer only by weak reference).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._system import DEFAULT_INTERVAL, SystemMonitor
from ._torch_checks import loss_name
from ._torch_hooks import Watch

__all__ = ["Watch", "unwatch", "watch"]

_LOCK = threading.Lock()
_WATCHES: dict[int, Watch] = {}  # id(root module) -> its watch


def _forget(key: int, w: Watch) -> None:
    """The watched model was garbage-collected: drop its watch."""
    with _LOCK:
        if _WATCHES.get(key) is w:
            del _WATCHES[key]
    w.close(flush=False)


def _report_checks(run: Any) -> None:
    """Send the findings of every model watched with ``run`` (the server replaces the run's
    earlier model checks with each report)."""
    with _LOCK:
        found = [f for w in _WATCHES.values() if w.run is run for f in w.findings]
    report = getattr(run, "report_model_checks", None)
    if report is not None:
        report(found)


def _dist_info() -> tuple[int, int] | None:
    """(rank, world size) under an initialised torch.distributed, else None."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _unwrap(model: nn.Module) -> nn.Module:
    ddp = nn.parallel.DistributedDataParallel
    return model.module if isinstance(model, ddp) else model


def _gpu_sampler(root_ref: weakref.ref):
    def sample() -> dict[str, float]:
        root = root_ref()
        p = next(root.parameters(), None) if root is not None else None
        if p is None or p.device.type != "cuda":
            return {}
        return {"sys/gpu_mem_alloc_mb": torch.cuda.memory_allocated(p.device) / 2**20,
                "sys/gpu_mem_reserved_mb": torch.cuda.memory_reserved(p.device) / 2**20}
    return sample


def watch(run: Any, model: nn.Module, optimizer: Any = None, every: int = 10, *,
          loss_fn: Any = None, batch_size: int | None = None, scaler: Any = None,
          log_eval: bool = False, all_ranks: bool = False, activations: bool = True,
          functional: bool = True, update_ratio: bool = True, system: bool = True,
          system_interval: float = DEFAULT_INTERVAL) -> Watch | None:
    """Log gradient, weight, activation, input and system signals of ``model`` to ``run``.

    Args:
        model: the module the training loop calls (``DistributedDataParallel`` is unwrapped).
        optimizer: enables ``update_ratio/*`` and ``lr``; its ``step()`` then defines a step.
        every: log every ``every``-th step (step 0 included); other steps cost an int compare.
        loss_fn: the loss (instance, class, function or name) for the ``output_activation``
            check; else the run config's ``loss`` string is used.
        batch_size: for the ``small_batch_norm`` check; else the run config's ``batch_size``,
            else the batch the first training forward shows.
        scaler: a ``GradScaler``: gradient norms are divided by its scale (pass it under AMP).
        log_eval: also log activation and input statistics of eval passes (``model.eval()``
            or grad disabled), as ``eval/act_*`` and ``eval/input/*``, pooled per step.
        all_ranks: under torch.distributed, log from every rank (keys of rank r > 0 get the
            prefix ``rank<r>/``); by default only rank 0 logs.
        activations: collect activation statistics; ``functional``: include functional calls.
        update_ratio: snapshot the updated parameters on logged steps for ``update_ratio/*``.
        system: start the system thread (``sys/*`` every ``system_interval`` seconds).

    Returns the :class:`Watch` (None on a rank that does not log). Watching a model again
    replaces its earlier watch; model checks go to ``run.report_model_checks``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"watch() needs a torch.nn.Module, got {type(model).__name__}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive int, got {every!r}")
    if optimizer is not None and not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer must be a torch optimizer, got {type(optimizer).__name__}")
    ddp = model is not _unwrap(model)
    root = _unwrap(model)
    with _LOCK:
        old = _WATCHES.pop(id(root), None)
    if old is not None:
        old.close()
    dist = _dist_info()
    rank = dist[0] if dist is not None else 0
    if rank != 0 and not all_ranks:
        return None
    config = getattr(run, "config", None)
    config = config if isinstance(config, Mapping) else {}
    loss = loss_name(loss_fn)
    if loss is None and isinstance(config.get("loss"), str):
        loss = config["loss"]
    source = "batch_size"
    if batch_size is None and isinstance(config.get("batch_size"), int):
        batch_size, source = config["batch_size"], "config"
    prefix = f"rank{rank}/" if rank else ""
    w = Watch(run, root, optimizer, every, loss=loss, batch_size=batch_size,
              batch_source=source, scaler=scaler, log_eval=log_eval, activations=activations,
              functional=functional, update_ratio=update_ratio, ddp=ddp, prefix=prefix,
              report=lambda: _report_checks(run))
    w.finalizer = weakref.finalize(root, _forget, id(root), w)
    with _LOCK:
        _WATCHES[id(root)] = w
        has_monitor = any(o.monitor is not None for o in _WATCHES.values() if o.run is run)
    _report_checks(run)
    if dist is not None:
        run.log({prefix + "dist/rank": float(rank), prefix + "dist/world_size": float(dist[1])},
                step=0)
    if system and not has_monitor:
        p = next(root.parameters(), None)
        index = None
        if p is not None and p.device.type == "cuda":  # CUDA is initialised already then
            index = p.device.index if p.device.index is not None else torch.cuda.current_device()
        w.monitor = SystemMonitor(run, lambda: w.step, system_interval,
                                  gpu_fn=_gpu_sampler(weakref.ref(root)), gpu_index=index,
                                  prefix=prefix)
        w.monitor.start()
    return w


def unwatch(run: Any, model: nn.Module | None = None) -> None:
    """Remove the hooks ``watch`` put on ``model`` (every model watched with ``run`` when
    None), stop their system thread and log what is pending."""
    root = None if model is None else _unwrap(model)
    with _LOCK:
        keys = [k for k, w in _WATCHES.items()
                if w.run is run and (root is None or w._root() is root)]
        gone = [_WATCHES.pop(k) for k in keys]
    for w in gone:
        w.close()
