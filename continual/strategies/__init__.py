"""Retraining strategies, one file per method, and the contract they follow.

A strategy is a plain object the :class:`~continual.module.ContinualModule` calls at fixed
points; everything a hook needs arrives as its arguments, so a method never reads state the
module keeps for itself. The runner calls, for task ``i`` of ``stream``:

================================  ============================================================
hook                              when, and what it is for
================================  ============================================================
``train_data(stream, i)``         what to fit on (default: task ``i``'s training data)
``on_task_start(module, s, i)``   before the fit: reset weights, snapshot a model
``loss(module, step, loss)``      each batch: the loss to minimise, given the cross-entropy
                                  ``loss`` on ``step.logits``; pure (no memory writes)
``on_before_optimizer_step(m)``   gradients are final (unscaled under AMP): gradient surgery
``after_step(module, step)``      after the update: memories and running statistics
``on_task_end(module, s, i)``     after the fit: importances, memories filled from the task
``predict(module, x, t, z)``      evaluation (module in eval mode): class scores from the
                                  logits ``z`` (default ``z``; iCaRL: nearest class mean)
``state_dict()`` / ``load_...``   everything needed to resume, in tensors and plain data
================================  ============================================================

``step`` is a :class:`~continual.strategies.base.Step`: the batch ``x, y, t``, the network's
``raw_logits`` over every class, the task-masked ``logits`` and the ``task`` index. Under DDP
the shared helpers do the collectives: :class:`~continual.strategies.rehearsal.Rehearsal`
(``remember`` gathers every rank's batch, ``replay`` draws the same items on every rank) and
:func:`~continual.strategies.regularizer.measure_over_ranks` (an importance over all ranks'
samples); a method file calls them and nothing from :mod:`continual.distributed`.

A complete method, replay of the labels with a reservoir memory, in the toolkit's terms::

    import torch.nn.functional as F

    from continual.buffers import ReplayBuffer
    from continual.strategies import Strategy


    class TinyReplay(Strategy):
        def __init__(self, buffer_size: int = 200, seed: int = 0) -> None:
            self.buffer = ReplayBuffer(buffer_size, seed=seed)

        def loss(self, module, step, loss):
            if len(self.buffer):
                x, y, t = self.buffer.sample(len(step.y), step.x.device)[:3]
                loss = loss + F.cross_entropy(module(x, t), y)
            return loss

        def after_step(self, module, step):
            self.buffer.add(step.x, step.y, step.t)

        def state_dict(self):
            return {"buffer": self.buffer.state_dict()}

        def load_state_dict(self, state):
            self.buffer.load_state_dict(state["buffer"])

(:class:`ExperienceReplay` is this method made DDP-aware through ``Rehearsal``.)
"""

from continual.strategies.agem import AGEM
from continual.strategies.base import Strategy
from continual.strategies.bic import BiC
from continual.strategies.coda import CodaPrompt
from continual.strategies.compose import Compose
from continual.strategies.der import DER
from continual.strategies.derpp import DERpp
from continual.strategies.er_ace import ERACE
from continual.strategies.ewc import EWC
from continual.strategies.fecam import FeCAM
from continual.strategies.finetune import FineTune
from continual.strategies.full_retrain import FullRetrain
from continual.strategies.gdumb import GDumb
from continual.strategies.gem import GEM
from continual.strategies.icarl import ICaRL
from continual.strategies.joint import Joint
from continual.strategies.l2p import L2P
from continual.strategies.lucir import LUCIR
from continual.strategies.lwf import LwF
from continual.strategies.mas import MAS
from continual.strategies.mir import MIR
from continual.strategies.online_ewc import OnlineEWC
from continual.strategies.packnet import PackNet
from continual.strategies.pnn import PNN
from continual.strategies.ranpac import RanPAC
from continual.strategies.replay import ExperienceReplay
from continual.strategies.rwalk import RWalk
from continual.strategies.si import SI
from continual.strategies.simplecil import SimpleCIL
from continual.strategies.xder import XDER

__all__ = [
    "AGEM", "DER", "BiC", "ERACE", "EWC", "GEM", "LUCIR", "MAS", "MIR", "SI", "Compose", "DERpp",
    "ExperienceReplay", "FineTune", "FullRetrain", "GDumb", "ICaRL", "Joint", "LwF", "OnlineEWC",
    "PackNet", "RanPAC", "RWalk", "SimpleCIL", "Strategy", "FeCAM",
    "XDER", "PNN", "L2P", "CodaPrompt",
]
