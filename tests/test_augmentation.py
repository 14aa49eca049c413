"""Batched augmentation in the training step, and images stored as uint8 decoded per batch."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything
from sklearn.datasets import load_digits
from tests_helpers import Crash, CrashAt, fake_mnist
from torch import nn
from torchvision.transforms import v2

from continual import ContinualModule, run
from continual.data import (
    TensorData,
    apply_transform,
    augment,
    idx_folder,
    permuted,
    split_classes,
    stratified_splits,
)
from continual.data.rotated import rotated
from continual.data.splits import standardize
from continual.data.transforms import (
    BatchRandomCrop,
    BatchRandomFlip,
    BatchTransform,
    PerSample,
    batched,
    with_pixels,
)
from continual.evaluation import evaluate
from continual.nets import MLP
from continual.strategies import EWC, Compose, ExperienceReplay

CPU = {"accelerator": "cpu", "max_epochs": 1}


@pytest.fixture(scope="module")
def pixel_digits():
    """``digits()`` as its pixels come, uint8 grey levels 0..16, decoded batch by batch."""
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.uint8).unsqueeze(1)  # [N, 1, 8, 8]
    data = stratified_splits(x, torch.tensor(bunch.target), name="digits", n_classes=10,
                             val_fraction=0.1, test_fraction=0.2, seed=0)
    return with_pixels(data, standardize=True, max_value=16)


class Recording(BatchTransform):
    """An identity augmentation that counts the samples it is given."""

    def __init__(self):
        super().__init__()
        self.samples = 0

    def forward(self, x):
        self.samples += len(x)
        return x


def window(padded: torch.Tensor, out: torch.Tensor) -> tuple[int, int, bool] | None:
    """Where ``out`` [C, h, w] was cut from ``padded`` [C, H, W] (top, left, flipped)."""
    h, w = out.shape[-2:]
    for top in range(padded.shape[-2] - h + 1):
        for left in range(padded.shape[-1] - w + 1):
            crop = padded[:, top:top + h, left:left + w]
            for flipped in (False, True):
                if torch.equal(crop.flip(-1) if flipped else crop, out):
                    return top, left, flipped
    return None


def test_batched_crop_and_flip_draw_per_sample_from_the_global_rng():
    x = torch.rand(64, 3, 8, 8)
    aug = batched([v2.RandomCrop(8, padding=2), v2.RandomHorizontalFlip()])
    assert [type(s) for s in aug.steps] == [BatchRandomCrop, BatchRandomFlip]
    torch.manual_seed(0)
    out = aug(x)
    torch.manual_seed(0)
    assert torch.equal(aug(x), out)  # the global RNG: a checkpointed run draws it again
    padded = F.pad(x, (2, 2, 2, 2))
    found = [window(p, o) for p, o in zip(padded, out)]
    assert None not in found  # each sample: one window of its own padded image, maybe flipped
    assert len(set(found)) > 30 and 10 < sum(f[2] for f in found) < 54  # draws per sample
    assert torch.equal(BatchRandomFlip(p=1.0, dim=-2)(x), x.flip(-2))
    edge = BatchRandomCrop(6, padding=[1, 2], padding_mode="edge")(x)
    assert edge.shape == (64, 3, 6, 6)


def test_transforms_without_a_batched_form_fall_back_to_a_loop_per_sample():
    rotate = v2.RandomRotation(30)
    aug = batched(v2.Compose([rotate, v2.RandomVerticalFlip(), v2.Identity()]))
    assert isinstance(aug.steps[0], PerSample) and aug.steps[0].transform is rotate
    assert isinstance(aug.steps[1], BatchRandomFlip) and len(aug.steps) == 2
    assert batched(aug) is not None and [type(s) for s in batched(aug).steps] == \
        [PerSample, BatchRandomFlip]  # converting twice changes nothing
    assert batched(v2.RandomCrop(4, padding_mode="symmetric", padding=1)).__class__ is PerSample
    assert batched([]) is None and batched(v2.Identity()) is None
    torch.manual_seed(0)
    out = aug(torch.rand(16, 1, 8, 8))
    assert out.shape == (16, 1, 8, 8)


def test_kornia_augmentations_are_used_as_they_are():
    kornia = pytest.importorskip("kornia.augmentation")
    flip = kornia.RandomHorizontalFlip(p=1.0)
    aug = batched([flip, v2.RandomCrop(8, padding=1)])
    assert aug.steps[0] is flip and isinstance(aug.steps[1], BatchRandomCrop)
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(flip(x), x.flip(-1))


def test_uint8_storage_decodes_to_the_float_copys_values(pixel_digits, digits_data, tmp_path):
    for stored, floats in zip((pixel_digits.train, pixel_digits.val, pixel_digits.test),
                              (digits_data.train, digits_data.val, digits_data.test)):
        assert stored.x.dtype == torch.uint8 and 4 * stored.x.nbytes == floats.x.nbytes
        assert torch.equal(stored.decoded().x, floats.x)  # bit for bit
    module = ContinualModule(MLP(hidden=[16]))
    train = pixel_digits.train
    module.prepare_for(10, train.x, None, normalization=train.normalization)
    assert torch.equal(module.training_inputs(train.x[:9]), digits_data.train.x[:9])
    assert torch.equal(module(train.x[:9]), module(digits_data.train.x[:9]))  # forward decodes
    copied = pickle.loads(pickle.dumps(module))  # the hook travels with the net
    assert torch.equal(copied(train.x[:9]), module(digits_data.train.x[:9]))
    module.prepare_for(10, train.x, None)  # nothing declared: the net is no longer hooked
    assert torch.equal(module.training_inputs(train.x[:2]), train.x[:2])
    # the loaders: MNIST files decode to what the float32 copy standardized held
    images, _ = fake_mnist(tmp_path)
    data = idx_folder(tmp_path, val_fraction=0.0, test_fraction=0.2)
    assert data.train.x.dtype == torch.uint8
    floats = idx_folder(tmp_path, val_fraction=0.0, test_fraction=0.2, normalize=False)
    floats.train, floats.test = floats.train.decoded(), floats.test.decoded()
    assert torch.equal(data.test.decoded().x, standardize(floats).test.x)


def test_scenarios_and_preprocessing_see_the_decoded_floats(pixel_digits, digits_data):
    assert torch.equal(permuted(pixel_digits, 2, seed=1)[1].test.x,
                       permuted(digits_data, 2, seed=1)[1].test.x)
    assert torch.equal(rotated(pixel_digits, [0, 90])[1].train.x,
                       rotated(digits_data, [0, 90])[1].train.x)
    resize = v2.Resize(4, antialias=True)
    assert torch.equal(apply_transform(pixel_digits, resize).val.x,
                       apply_transform(digits_data, resize).val.x)
    # a lone Normalize joins the declaration of pixels only scaled: they stay uint8
    scaled = with_pixels(pixel_digits, standardize=False, max_value=16)
    normalize = v2.Normalize([0.3], [0.4])
    joined = apply_transform(scaled, normalize)
    assert joined.test.x.dtype == torch.uint8
    assert torch.equal(joined.test.decoded().x, normalize(scaled.test.decoded().x))
    stream = split_classes(pixel_digits, n_tasks=2)  # a selection keeps the uint8 pixels
    assert stream[1].train.x.dtype == torch.uint8 and stream[1].train.normalization is not None


def test_a_uint8_stream_trains_and_evaluates_exactly_as_the_float_one(pixel_digits, digits_data):
    def once(data):
        seed_everything(0, verbose=False)
        strategy = Compose([EWC(lam=100.0, n_samples=64), ExperienceReplay(buffer_size=40)])
        module = ContinualModule(MLP(hidden=[32]), strategy)
        result = run(split_classes(data, n_tasks=3), module, trainer=CPU, batch_size=32,
                     echo=None)
        return result, strategy.strategies[1].buffer.data().x

    stored, memory = once(pixel_digits)
    floats, float_memory = once(digits_data)
    np.testing.assert_array_equal(stored.matrix, floats.matrix)  # replay and Fisher included
    assert memory.dtype == torch.uint8 and float_memory.dtype == torch.float32


def test_replayed_samples_are_augmented_unless_the_strategy_opts_out(pixel_digits):
    stream = split_classes(pixel_digits, n_tasks=2)
    steps = sum(-(-len(task.train) // 32) for task in stream)
    for augment_replay in (True, False):
        recording = Recording()
        strategy = ExperienceReplay(buffer_size=50, replay_batch_size=8,
                                    augment_replay=augment_replay)
        module = ContinualModule(MLP(hidden=[32]), strategy)
        run(augment(stream, recording), module, trainer=CPU, batch_size=32, echo=None)
        replayed = 8 * (steps - 1)  # every step but the first, once the memory holds a batch
        # validation and the accuracy matrix ran too, and were never augmented
        assert recording.samples == module.samples_seen + (replayed if augment_replay else 0)
        evaluate(module, [task.test for task in stream])
        assert recording.samples == module.samples_seen + (replayed if augment_replay else 0)
    assert "augment_replay=False" in repr(strategy) and "augment" not in repr(
        ExperienceReplay())  # default runs keep their fingerprint

    # what a replay batch holds: the stored images, decoded and flipped (p=1)
    module = ContinualModule(MLP(hidden=[16]))
    train = pixel_digits.train
    module.prepare_for(10, train.x, None, normalization=train.normalization,
                       augmentation=v2.RandomHorizontalFlip(p=1.0))
    memory = ExperienceReplay(buffer_size=10)
    memory.buffer.add(train.x[:10], torch.arange(10), torch.zeros(10, dtype=torch.long))
    bx, by = memory.replay(10, module=module)[:2]
    expected = train.decoded().x[:10].flip(-1)
    assert torch.equal(bx, expected[by])
    stored, labels = memory.replay(10)[:2]  # without the module: as stored
    assert stored.dtype == torch.uint8 and torch.equal(stored, train.x[:10][labels])


def test_resume_with_augmentation_is_bit_identical(pixel_digits, tmp_path):
    stream = augment(split_classes(pixel_digits, n_tasks=2),
                     [v2.RandomCrop(8, padding=1), v2.RandomHorizontalFlip()])
    kwargs = {"batch_size": 64, "seed": 3, "echo": None}

    def fresh(seed):
        seed_everything(seed, verbose=False)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        return ContinualModule(net, ExperienceReplay(buffer_size=40))

    whole = fresh(0)
    expected = run(stream, whole, trainer={**CPU, "max_epochs": 2}, run_dir=tmp_path / "a",
                   **kwargs)
    with pytest.raises(Crash):
        run(stream, fresh(0), trainer={**CPU, "max_epochs": 2, "callbacks": [CrashAt()]},
            run_dir=tmp_path / "b", **kwargs)
    resumed = fresh(123)
    result = run(stream, resumed, trainer={**CPU, "max_epochs": 2}, run_dir=tmp_path / "b",
                 resume=True, **kwargs)
    np.testing.assert_array_equal(result.matrix, expected.matrix)
    assert all(torch.equal(a, b) for a, b in zip(resumed.net.state_dict().values(),
                                                 whole.net.state_dict().values()))


def test_pixel_data_refuses_floats_and_mixed_normalizations(pixel_digits):
    train = pixel_digits.train
    with pytest.raises(ValueError, match="does not decode"):
        TensorData(train.x.float(), train.y, normalization=train.normalization)
    other = with_pixels(pixel_digits, standardize=False, max_value=16).train
    with pytest.raises(ValueError, match="different pixel normalizations"):
        TensorData.concat([train, other])


def test_the_augmented_cifar_config_builds_uint8_tasks_with_batched_augmentation(tmp_path):
    from pathlib import Path

    from test_vision import write_cifar

    from continual.config import instantiate, run_parser

    config = Path(__file__).parents[1] / "configs" / "data" / "split_cifar10_augmented.yaml"
    parser = run_parser()
    cfg = parser.parse_args(["--config", str(config), "--data.init_args.dataset.init_args.root",
                             str(write_cifar(tmp_path, per_file=20))])
    init = instantiate(parser, cfg)
    stream = init.data.build()
    assert stream[0].train.x.dtype == torch.uint8
    assert [type(s) for s in stream[0].train.transform.steps] == [BatchRandomCrop,
                                                                   BatchRandomFlip]
    module = ContinualModule(init.model.net)
    train = stream[0].train
    module.prepare_for(10, train.x, None, normalization=train.normalization,
                       augmentation=train.transform)
    x = module.training_inputs(train.x[:8])
    assert x.dtype == torch.float32 and x.shape == (8, 3, 32, 32)


def test_agems_reference_batch_is_augmented_alike_on_every_call_of_a_step(pixel_digits):
    from continual.strategies import AGEM

    stream = split_classes(pixel_digits, n_tasks=2)
    for augment_replay in (True, False):
        recording = Recording()
        module = ContinualModule(MLP(hidden=[32]), AGEM(buffer_size=40, replay_batch_size=8,
                                                        augment_replay=augment_replay))
        run(augment(stream, recording), module, trainer=CPU, batch_size=32, echo=None)
        second = -(-len(stream[1].train) // 32)  # A-GEM's memory holds task 0 from task 1 on
        assert recording.samples == module.samples_seen + (8 * second if augment_replay else 0)

    module = ContinualModule(MLP(hidden=[16]))
    train = pixel_digits.train
    module.prepare_for(10, train.x, None, normalization=train.normalization,
                       augmentation=v2.RandomCrop(8, padding=2))
    agem = AGEM(buffer_size=10, replay_batch_size=10)
    agem.buffer.add(train.x[:10], torch.arange(10), torch.zeros(10, dtype=torch.long))
    rank1, stored = copy.deepcopy(agem), copy.deepcopy(agem)  # the same memory and draws
    stored.augment_replay = False
    state = torch.get_rng_state()
    first = agem.reference_batch(module)[0]
    assert torch.equal(first, rank1.reference_batch(module)[0])  # seeded by the step
    assert not torch.equal(first, stored.reference_batch(module)[0])  # and augmented
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is untouched
