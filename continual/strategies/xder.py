"""X-DER (Boschini et al. 2022, "Class-Incremental Continual Learning into the eXtended
DER-verse", TPAMI): DER++ whose memory logits learn the classes that arrive after them."""

from __future__ import annotations

import torch
from torch import Tensor

from continual.buffers import Storage
from continual.data.stream import Stream
from continual.errors import ConfigError
from continual.strategies.derpp import DERpp


def future_past_logits(stored: Tensor, current: Tensor, y: Tensor, new: Tensor, gamma: float
                       ) -> Tensor:
    """Memory logits ``[N, C]`` with the ``new`` classes' columns taken from ``current``
    ``[N, C]`` (the model's logits now); where their maximum exceeds the stored logit of the
    item's own class ``y``, they are scaled by ``γ · z_y / max`` so the true class stays on top.
    """
    out = stored.clone()
    block = current[:, new]  # [N, K]
    truth = stored.gather(1, y[:, None])  # [N, 1]
    top = block.max(1, keepdim=True).values
    out[:, new] = torch.where(top > truth, block * (gamma * truth / top), block)
    return out


class XDER(DERpp):
    """DER++ (``CE + α MSE(f(x_m), z_m) + β CE(f(x_m'), y_m')``), and at each task's end the
    memory items of earlier classes get the model's logits for the task's new classes
    (:func:`future_past_logits`): DER's stored logits otherwise hold untrained outputs for every
    class that came later, and the MSE term would pull those back towards noise.

    Simplified from the paper, stated so results are read right: the memory is DER's reservoir
    (the paper fills it per class at each task's end); the update happens at task ends only (the
    paper also updates during the task); the items of the current task keep the logits recorded
    when they entered; and the future-head consistency (SupCon) and logit-constraint terms are
    left out. Defaults: ``α = 0.1``, ``β = 0.5`` (DER++'s here), ``γ = 0.85``.

    Args:
        alpha, beta: as in :class:`~continual.strategies.derpp.DERpp`.
        gamma: γ, how far below the true class's logit a rescaled new class stays.
        buffer_size, replay_batch_size, replay_ratio, seed, buffer_device, storage: as in
            ``DER``.
    """

    def __init__(self, alpha: float = 0.1, beta: float = 0.5, gamma: float = 0.85,
                 buffer_size: int = 200, replay_batch_size: int | None = None,
                 replay_ratio: float = 1.0, seed: int = 0, buffer_device: str | None = None,
                 storage: Storage = "auto") -> None:
        if not 0 < gamma <= 1:
            raise ConfigError(f"gamma={gamma} is invalid; allowed: 0 < gamma <= 1")
        super().__init__(alpha, beta, buffer_size, replay_batch_size, replay_ratio, seed,
                         buffer_device, storage=storage)
        self.gamma = gamma

    @torch.no_grad()
    def on_task_end(self, module, stream: Stream, index: int) -> None:
        earlier = {c for task in stream.tasks[:index] for c in task.classes}
        new = sorted(set(stream[index].classes) - earlier)
        state = self.buffer.state_dict()
        store = state["store"]
        if not new or "logits" not in store:
            return
        old = store["valid"].nonzero().flatten().to(store["y"].device)
        old = old[~torch.isin(store["y"][old], torch.tensor(new, device=old.device))]
        was_training = module.net.training
        module.net.eval()
        try:  # inputs decoded as training sees them, never augmented
            inputs = self.buffer.items(old)[0]  # copies, or rows read back
            current = module.net(module.training_inputs(inputs.to(module.device),
                                                        augment=False))
        finally:
            module.net.train(was_training)
        logits = store["logits"].clone()
        logits[old] = future_past_logits(
            logits[old], current.to(logits), store["y"][old],
            torch.tensor(new, device=logits.device), self.gamma)
        state["store"] = {**store, "logits": logits}
        self.buffer.load_state_dict(state)
