"""The private upstream names :mod:`continual.compat` relies on still exist and still do what
it expects: an upgrade that moves one fails here, by name, not somewhere inside a run."""

from __future__ import annotations

import torch

from continual import compat


def test_torch_still_has_the_fused_list_ops():
    for name in ("_foreach_sub", "_foreach_mul", "_foreach_addcmul_"):
        assert callable(getattr(torch, name, None)), f"torch.{name} moved: update compat.py"


def test_fused_ops_equal_their_per_tensor_definitions():
    a = [torch.randn(3, 2), torch.randn(5)]
    b = [torch.randn(3, 2), torch.randn(5)]
    out = [torch.randn(3, 2), torch.randn(5)]
    expected = [o + 0.5 * x * y for o, x, y in zip(out, a, b)]
    compat.foreach_addcmul_(out, a, b, value=0.5)
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want)
    for got, x, y in zip(compat.foreach_sub(a, b), a, b):
        torch.testing.assert_close(got, x - y)
    copies = compat.foreach_copy(a)
    assert all(c is not x and torch.equal(c, x) for c, x in zip(copies, a))


def test_the_fallbacks_compute_the_same(monkeypatch):
    a, b = [torch.randn(4)], [torch.randn(4)]
    fused = compat.foreach_sub(a, b)[0]
    for name in ("_foreach_sub", "_foreach_mul", "_foreach_addcmul_"):
        monkeypatch.delattr(torch, name)
    torch.testing.assert_close(compat.foreach_sub(a, b)[0], fused)
    assert torch.equal(compat.foreach_copy(a)[0], a[0])
    out = [torch.zeros(4)]
    compat.foreach_addcmul_(out, a, b, value=2.0)
    torch.testing.assert_close(out[0], 2.0 * a[0] * b[0])


def test_lightnings_ddp_launcher_is_where_compat_looks():
    from lightning.pytorch import Trainer

    launcher = compat.ddp_script_launcher()
    trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    assert isinstance(trainer.strategy.launcher, launcher)


def test_the_package_names_no_private_upstream_name_outside_compat():
    from pathlib import Path

    import continual

    root = Path(continual.__file__).parent
    private = ("_on_before_step", "_on_after_step", "_current_fx_name", "_SubprocessScriptLauncher",
               "entry_points", "torch._foreach", "._trainer", "wandb_internal_pb2")
    for path in root.rglob("*.py"):
        if path.name == "compat.py":
            continue
        text = path.read_text()
        found = [name for name in private if name in text]
        assert not found, f"{path.relative_to(root)} uses {found}: move it to compat.py"


def test_lightnings_fit_loop_still_holds_the_per_fit_limits_where_compat_sets_them():
    from lightning.pytorch import Trainer

    trainer = Trainer(max_epochs=3, min_epochs=1, max_steps=50, min_steps=2, logger=False,
                      accelerator="cpu", enable_checkpointing=False)
    budget = compat.fit_budget(trainer)
    assert budget == compat.FitBudget(3, 1, 50, 2), "Lightning moved the fit loop's limits"
    compat.set_fit_budget(trainer, budget, epoch=6, step=100)
    # What Lightning itself reads: an upgrade that renames the attributes fails here.
    assert (trainer.max_epochs, trainer.min_epochs, trainer.max_steps, trainer.min_steps) == \
        (9, 7, 150, 102)
    unlimited = compat.FitBudget(-1, None, -1, None)
    compat.set_fit_budget(trainer, unlimited, epoch=6, step=100)
    assert (trainer.max_epochs, trainer.min_epochs, trainer.max_steps, trainer.min_steps) == \
        (-1, None, -1, None)


def test_lightnings_counts_and_timer_restart_where_compat_restarts_them():
    from lightning.pytorch.callbacks import Timer

    timer = Timer(duration={"seconds": 60})
    trainer = fitted(timer, epochs=2, batches=3)
    logged = trainer.fit_loop.epoch_loop._batches_that_stepped
    assert (trainer.current_epoch, trainer.global_step, logged) == (2, 6, 6)
    assert timer.time_elapsed() > 0
    compat.restart_counts(trainer)
    compat.restart_timer(timer)
    # What Lightning itself reads: an upgrade that renames the counters fails here.
    assert (trainer.current_epoch, trainer.global_step) == (0, 0), "Lightning moved its counts"
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == 6  # the loggers' step goes on
    assert (timer.start_time(), timer.end_time(), timer.time_elapsed()) == (None, None, 0)


def test_lightnings_checkpoint_callback_keeps_its_last_save_where_compat_forgets_it(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    saves = ModelCheckpoint(dirpath=tmp_path)
    fitted(saves, epochs=1, batches=2)
    assert (saves._last_global_step_saved, saves._last_checkpoint_saved) == \
        (2, saves.best_model_path), "Lightning moved ModelCheckpoint's record of its last save"
    compat.restart_checkpoint(saves)
    assert (saves._last_global_step_saved, saves._last_checkpoint_saved) == (0, "")
    assert (ModelCheckpoint()._last_global_step_saved, ModelCheckpoint()._last_checkpoint_saved) \
        == (0, ""), "a fresh ModelCheckpoint starts elsewhere"


def fitted(callback, epochs: int, batches: int):
    """A Trainer that fitted a one-layer module with ``callback``, ``batches`` a epoch."""
    import torch
    from lightning.pytorch import LightningModule, Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    class Tiny(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = Trainer(max_epochs=epochs, logger=False, accelerator="cpu",
                      enable_checkpointing=isinstance(callback, ModelCheckpoint),
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(Tiny(), torch.utils.data.DataLoader(torch.ones(4 * batches, 2), batch_size=4))
    return trainer
