"""The hooks behind ``watch(model)``: gradient, weight and activation signals from PyTorch.

The keys are listed in ``docs/signals.md``. How the work is kept off the training loop:

- Steps: with an optimizer, a step is one ``optimizer.step()`` (counted by a step post-hook);
  without one, one training forward of the model (``model.training`` and grad enabled). The
  counter starts at 0; a step is *logged* when ``step % every == 0``.
- With an optimizer, a step that is not logged runs one Python function: the optimizer's
  step post-hook (an increment and an int compare); no module runs a hook. The step before a
  logged one *arms* the root's forward pre-hook; the logged forward *engages* the rest (the
  root's forward hook, the optimizer's step pre-hook, hooks on the activation modules); the
  logged step's own step post-hook removes them all unless the next step is logged too.
  Without an optimizer, with ``log_eval``, or until the first training forward's checks ran,
  the root's hooks stay (every forward needs them) and only the activation hooks come and go.
- On a logged step: the root's forward pre-hook records the input batch's statistics and
  starts a :class:`ForwardCapture` (activations, see ``_torch_capture``); the forward hook
  stops it and arms a :class:`BackwardTrigger` so that the end of the backward pass reads
  every gradient's norm (``torch._foreach_norm``), before any clipping. The trigger is a
  post-accumulate-grad hook on the first parameter the optimizer updates, kept while logged
  steps follow each other; if that parameter once gets no gradient (that step then logs no
  gradient norms), or without an optimizer, each logged forward hooks its output's autograd
  node instead (costlier: a registration per step). The optimizer's step
  pre-hook copies the parameters it updates into flat buffers kept for the next logged step
  (:class:`~client_sdk._torch_state.Snapshot`), its post-hook computes weight norms and
  update sizes in one ``_foreach_norm``. All of it stays on the tensors' device; the step's
  figures are stacked into one tensor, copied to the host with one ``non_blocking`` copy, and
  handed to ``run.log`` once a CUDA event says the copy is done (polled at the next step,
  never waited for; on other accelerators the copy is a plain blocking one). Figures that
  are all on the CPU need no copy: they are read in place and logged at once.
- Gradient accumulation and steps skipped by ``GradScaler``: until ``optimizer.step()`` runs,
  the forwards of a logged step pool their statistics and the last backward's gradients win.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._system import SystemMonitor
from ._torch_capture import ForwardCapture, Probe
from ._torch_checks import output_node_act, run_checks
from ._torch_state import (
    ENGINE,
    TENSOR_SCALE,
    BackwardTrigger,
    Layers,
    Outbox,
    Record,
    Snapshot,
    StepStats,
    first_tensor,
    out_tensors,
)
from ._torch_stats import grad_off, grad_restore, tensor_norms

logger = logging.getLogger("client_sdk")


class Watch:
    """The hooks ``watch()`` put on one model. ``step`` is the current step; ``findings`` the
    model checks last reported; :meth:`close` (what ``unwatch`` calls) removes everything."""

    def __init__(self, run: Any, root: nn.Module, optimizer: Any, every: int, *,
                 loss: str | None, batch_size: int | None, batch_source: str,
                 scaler: Any, log_eval: bool, activations: bool, functional: bool,
                 update_ratio: bool, ddp: bool, prefix: str,
                 report: Callable[[], None]) -> None:
        self.run = run
        self.every = every
        self.step = 0
        self.findings: list[dict] = []
        self._root = weakref.ref(root)
        self._opt = weakref.ref(optimizer) if optimizer is not None else None
        self._layers = Layers(root, optimizer)
        self._loss, self._batch_size, self._batch_source = loss, batch_size, batch_source
        self._scaler = scaler
        self._log_eval, self._activations, self._functional = log_eval, activations, functional
        self._update_ratio = update_ratio and optimizer is not None
        self._ddp = ddp
        self._ddp_requeued = False
        self._prefix = prefix
        self._report = report
        self.finalizer: weakref.finalize | None = None
        self._cur: StepStats | None = None
        self._eval: StepStats | None = None
        self._capture: ForwardCapture | None = None
        self._depth = 0  # > 0 while a watched forward of the root is running
        self._fwd_train = False
        self._trigger = BackwardTrigger(self._on_backward_end)
        self._snap: Snapshot | None = None  # the update-ratio buffers, kept between steps
        self._snapshot: list | None = None  # the buffers holding this step's "before"
        self._outbox = Outbox(run.log, self._fail)
        self._inflight = self._outbox.inflight  # (its truth is tested on every step)
        self._fwd_seen = False
        self._probe: Probe | None = Probe()
        self._failed = False
        self._closed = False
        self.monitor: SystemMonitor | None = None
        self._handles: list = []  # the step post-hook: always there
        self._armed: list = []  # the root's forward pre-hook, and what _engage adds
        self._engaged = False
        self._act_handles: list | None = None  # forward hooks on the activation modules
        self._mod_capture: ForwardCapture | None = None  # what they feed (reused)
        #: the end of a logged backward is found through a hook on one parameter (after its
        #: gradient is accumulated) while engaged; None: through a hook on the output's node
        #: added by each logged forward (no optimizer, older torch, or that parameter once
        #: got no gradient)
        self._trigger_param: weakref.ref | None = None
        self._grad_hook = None
        if optimizer is not None and self._layers.updated and hasattr(
                Tensor, "register_post_accumulate_grad_hook"):
            self._trigger_param = self._layers.params[self._layers.updated[0]]
        if optimizer is not None:
            self._handles.append(optimizer.register_step_post_hook(self._on_step_post))
        self._arm()
        self.findings = run_checks(root, loss, batch_size, batch_source)

    # -- arming -----------------------------------------------------------------------------
    def _arm(self) -> None:
        """Register the root's forward pre-hook (before a logged step)."""
        root = self._root()
        if self._armed or root is None or self._closed:
            return
        self._armed = [root.register_forward_pre_hook(self._on_forward_pre, with_kwargs=True)]

    def _engage(self, root: nn.Module) -> None:
        """From the first watched forward on: the root's forward hook (it runs for the
        forward that registers it) and the optimizer's step pre-hook."""
        self._engaged = True
        self._armed.append(root.register_forward_hook(self._on_forward, always_call=True))
        opt = self._opt() if self._opt is not None else None
        if opt is not None:
            self._armed.append(opt.register_step_pre_hook(self._on_step_pre))

    def _rest(self) -> None:
        """The step that starts is not logged: remove the activation modules' hooks, and
        those :meth:`_arm` and :meth:`_engage` added unless every forward needs them, until
        the step before the next logged one."""
        if self._depth or self._cur is not None:
            return
        if self._act_handles is not None:
            self._act_hooks_off()
        self._unhook_trigger_param()
        if self._opt is None or self._log_eval or self._probe is not None:
            return
        for h in self._armed:
            h.remove()
        self._armed = []
        self._engaged = False

    # -- forward ----------------------------------------------------------------------------
    def _on_forward_pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._inflight:
            self._outbox.drain(False)
        if self._depth:  # the root called inside its own forward
            self._depth += 1
            return
        if self._failed:
            return
        try:
            if module.training and torch.is_grad_enabled():
                if self._opt is None:  # steps are training forwards
                    if self._fwd_seen:
                        if self._cur is not None:
                            self._finalize()
                        self.step += 1
                        if self.step % self.every:
                            self._rest()
                    self._fwd_seen = True
                if self._eval is not None:
                    self._finish_eval()
                if self.step % self.every == 0:
                    if self._cur is None:
                        self._cur = StepStats(self.step)
                    self._begin(module, self._cur, args, kwargs, True)
                elif self._probe is not None:
                    self._begin(module, None, args, kwargs, True)
            elif self._log_eval:
                if self._eval is not None and self._eval.step != self.step:
                    self._finish_eval()
                if self._eval is None:
                    self._eval = StepStats(self.step)
                self._begin(module, self._eval, args, kwargs, False)
        except Exception as exc:  # noqa: BLE001 - never raise into training
            self._fail(exc)

    def _begin(self, module: nn.Module, stats: StepStats | None, args: tuple, kwargs: dict,
               train: bool) -> None:
        """Start watching one forward: input statistics now, activations until it returns."""
        if not self._engaged:
            self._engage(module)
        self._depth = 1
        self._fwd_train = train
        if stats is not None:
            x = first_tensor(args, kwargs)
            if x is not None and x.is_floating_point() and x.numel():
                stats.add_input(x)
        probe = self._probe if train else None
        collect = stats is not None and self._activations
        functional = self._functional and collect
        layers = self._layers
        if collect and not functional and probe is None:  # activation modules only
            capture = self._mod_capture
            if capture is None:
                capture = self._mod_capture = ForwardCapture(
                    layers.names, layers.acts, stats.add_act, False, None, self._fail)
            else:
                capture.restart(stats.add_act)
            if self._act_handles is None:
                self._act_hooks_on(capture.act_hook)
            self._capture = capture
        elif collect or probe is not None:
            capture = self._capture = ForwardCapture(
                layers.names, layers.acts if collect else {},
                stats.add_act if collect else _ignore, functional, probe, self._fail)
            capture.start()

    def _act_hooks_on(self, hook: Callable) -> None:
        """Forward hooks on the activation modules, kept while logged steps follow each
        other (they cost a Python call per module call, so not between logged steps)."""
        handles = []
        for ref in self._layers.act_modules:
            m = ref()
            if m is not None:
                handles.append(m.register_forward_hook(hook))
        self._act_handles = handles

    def _act_hooks_off(self) -> None:
        handles, self._act_handles = self._act_handles, None
        for h in handles or ():
            h.remove()

    def _on_forward(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        capture, self._capture = self._capture, None
        try:
            if capture is not None:
                capture.stop()
                if (capture.looks_for_functional and capture.functional_calls == 0
                        and not capture.failed):
                    self._functional = False  # none on a logged forward: stop looking
            if not self._fwd_train:
                return
            if self._probe is not None and output is not None:
                self._first_forward_checks(module, output)
            if self._cur is not None and ENGINE is not None:
                trigger = self._trigger
                trigger.armed = True  # (a backward that never finished must not disarm it)
                if self._grad_hook is None and self._trigger_param is not None:
                    self._hook_trigger_param()
                if self._grad_hook is not None:
                    return  # the trigger parameter's hook queues the end of the backward
                for t in out_tensors(output):
                    node = t.grad_fn
                    if node is not None and hasattr(node, "register_prehook"):
                        node.register_prehook(trigger)  # runs before the node, like a tensor hook
                    else:
                        t.register_hook(trigger)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _first_forward_checks(self, module: nn.Module, output: Any) -> None:
        probe, self._probe = self._probe, None
        found = run_checks(module, self._loss, self._batch_size, self._batch_source,
                           order=probe.order or None, node_act=output_node_act(output),
                           observed_batch=probe.bn_batch)
        if found != self.findings:
            self.findings = found
            self._report()

    # -- backward ---------------------------------------------------------------------------
    def _on_backward_end(self) -> None:
        if self._ddp:  # run after DDP's own end-of-backward callback has averaged the grads
            self._ddp_requeued = not self._ddp_requeued
            if self._ddp_requeued:
                ENGINE.queue_callback(self._on_backward_end)
                return
        cur = self._cur
        if cur is None or self._closed:
            return
        cur.backward_seen = True
        try:
            grads = [None if p is None else p.grad for p in self._layers.live()]
            idx = self._layers.all_idx
            for g in grads:
                if g is None or g.is_sparse:
                    idx = tuple(i for i, g in enumerate(grads) if g is not None)
                    grads = [grads[i] for i in idx]
                    grads = [g.coalesce().values() if g.is_sparse else g for g in grads]
                    break
            if not grads:
                cur.grads = None
                return
            prev = grad_off()
            try:
                norms = tensor_norms(grads)
            finally:
                grad_restore(prev)
            cur.grads = (idx, norms, self._loss_scale())
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _loss_scale(self) -> Any:
        """The GradScaler's current scale: a copy on its device (read without a sync; the
        scaler updates its own in place), a float, or None without an enabled scaler."""
        s = self._scaler
        if s is None or not s.is_enabled():
            return None
        scale = s._get_scale_async() if hasattr(s, "_get_scale_async") else None
        return float(s.get_scale()) if scale is None else scale.detach().reshape(()).clone()

    # -- optimizer step ---------------------------------------------------------------------
    def _on_step_pre(self, optimizer: Any, args: tuple, kwargs: dict) -> None:
        cur = self._cur
        if cur is None or self._failed:
            return
        if not cur.backward_seen and self._grad_hook is not None:
            self._trigger_missed()
        if not self._update_ratio:
            return
        try:
            params = self._layers.live()
            snap = self._snap
            if snap is None or not snap.matches(params):
                idx = tuple(i for i in self._layers.updated if params[i] is not None)
                snap = self._snap = Snapshot(idx, [params[i] for i in idx], self._layers.owner,
                                             self._layers.ratio_keys) if idx else None
            if snap is not None:
                prev = grad_off()
                try:
                    self._snapshot = snap.take(params)
                finally:
                    grad_restore(prev)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _hook_trigger_param(self) -> None:
        """Hook the trigger parameter (after the forward: lazy modules have materialised
        it); kept until :meth:`_rest`."""
        param = self._trigger_param()
        try:
            if param is None:
                raise ValueError("the trigger parameter is gone")
            self._grad_hook = param.register_post_accumulate_grad_hook(self._trigger)
        except (RuntimeError, ValueError):
            self._trigger_param = None
            return
        self._armed.append(self._grad_hook)

    def _trigger_missed(self) -> None:
        """A logged step reaches the optimizer without the trigger parameter's hook having
        seen a backward: if other parameters got gradients, that parameter is not used in
        every step, so its gradient norms are lost and later logged forwards hook their
        output instead (as without an optimizer)."""
        if any(p is not None and p.grad is not None for p in self._layers.live()):
            logger.debug("losslens: watch() hooks the model output to see backward passes")
            self._trigger_param = None
            self._unhook_trigger_param()

    def _unhook_trigger_param(self) -> None:
        hook, self._grad_hook = self._grad_hook, None
        if hook is not None:
            hook.remove()
            self._armed.remove(hook)

    def _on_step_post(self, optimizer: Any, args: tuple, kwargs: dict) -> None:
        if self._cur is not None:
            if not self._failed:
                try:
                    self._finalize(optimizer)
                except Exception as exc:  # noqa: BLE001
                    self._fail(exc)
            self._cur = None
            self._snapshot = None
        step = self.step = self.step + 1
        if self._inflight:
            self._outbox.drain(False)
        if step % self.every:
            if self._armed or self._act_handles is not None:
                self._rest()
        elif not self._armed:
            self._arm()

    # -- turning a step's tensors into one host copy ----------------------------------------
    def _finalize(self, optimizer: Any = None) -> None:
        cur, self._cur = self._cur, None
        bufs, self._snapshot = self._snapshot, None
        rec = Record(cur.step, self._prefix)
        layers = self._layers
        params = layers.live()
        live = layers.live_idx(params)
        snap = self._snap if bufs is not None else None
        prev = grad_off()
        try:
            tensors = [params[i] for i in live] if live is not layers.all_idx else params
            if snap is not None:  # same parameters as at the step pre-hook: the optimizer has them
                tensors = tensors + snap.deltas(bufs, params)  # before - after, per module
            norms = tensor_norms(tensors)  # one call: weights, then update sizes
        finally:
            grad_restore(prev)
        n = len(live)
        if n:
            rec.add("weights", norms[:n], layers.groups(live, layers.weight_keys), live)
        if snap is not None:
            rec.add("ratio", norms[n:], snap.ratio_plan, layers.all_idx)
        if cur.grads is not None:
            idx, grad_norms, scale = cur.grads
            groups = layers.groups(idx, layers.grad_keys)
            if isinstance(scale, Tensor):
                rec.add("grads", [*grad_norms, scale], groups, TENSOR_SCALE)
            else:
                rec.add("grads", grad_norms, groups, scale)
        rec.add_stats(cur, layers)
        if optimizer is not None:
            rec.add_lr(optimizer)
        self._outbox.emit(rec)

    def _finish_eval(self) -> None:
        stats, self._eval = self._eval, None
        rec = Record(stats.step, self._prefix)
        rec.add_stats(stats, self._layers, "eval/")
        self._outbox.emit(rec)

    # -- lifecycle --------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if not self._failed:
            self._failed = True
            logger.warning("losslens: watch() stopped collecting after an internal error: %r",
                           exc, exc_info=exc)

    def close(self, flush: bool = True) -> None:
        """Remove every hook, stop the system thread, and (``flush``) log what is pending."""
        if self._closed:
            return
        self._closed = True
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._depth = 0
        self._act_hooks_off()
        for h in self._handles + self._armed:
            h.remove()
        self._handles.clear()
        self._armed = []
        self._engaged = False
        self._grad_hook = None
        if self.monitor is not None:
            self.monitor.stop()
        if self.finalizer is not None:
            self.finalizer.detach()
        try:
            if flush and self._cur is not None and not self._failed:
                opt = self._opt() if self._opt is not None else None
                self._finalize(opt)
            if flush and self._eval is not None and not self._failed:
                self._finish_eval()
            self._outbox.drain(True)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        self._cur = self._eval = self._snapshot = self._snap = self._mod_capture = None


def _ignore(*_args: Any) -> None:
    return None
