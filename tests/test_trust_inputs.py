"""Bad files and bad places end in one line naming the file (or field) and what is allowed, with
the exit code of its kind and no traceback: reports of damaged results, user data streams,
dataset files, output folders, an unreachable W&B server, a damaged checkpoint or config."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from continual.cli import main
from continual.errors import ConfigError
from continual.result import Result, TaskCost

FAST = ["--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2", "--quiet", "true"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- continual report on damaged results ------------------------------------------------------

def _results(run_dir: Path) -> Path:
    Result(matrix=np.eye(2), baseline=np.zeros(2), cost=[TaskCost(), TaskCost()],
           stream={"name": "s"}, strategy="FineTune()", seed=0).save(run_dir)
    return run_dir / "results.json"


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("damage", [
    lambda p: p.write_text(p.read_text()[:40]),
    lambda p: _edit(p, lambda d: d.update(matrix=[[1.0, 0.0], [0.5]])),
    lambda p: _edit(p, lambda d: d.pop("baseline")),
    lambda p: _edit(p, lambda d: d.update(cost=[{"seconds": 1}])),
    lambda p: _edit(p, lambda d: d.update(matrix=[[1.0, 0.0]] * 3)),
    lambda p: p.write_text("[1, 2]"),
    lambda p: p.write_bytes(b"\xff\xfe\x00binary"),
    lambda p: p.write_text(""),
], ids=["truncated", "ragged", "missing-key", "bad-cost", "too-many-rows", "a-list", "binary",
        "empty"])
def test_report_of_a_damaged_results_json_names_the_file(damage, tmp_path, capsys):
    path = _results(tmp_path / "run")
    damage(path)
    code = main(["report", str(tmp_path / "run"), "--output", str(tmp_path / "rep")])
    err = one_line(capsys)
    assert code == 2 and str(path) in err and "allowed" in err, err


# --- continual simulate: user streams ---------------------------------------------------------

SIM = {"trainer": {"max_epochs": 1}, "initial_chunks": 1, "policies": [{"name": "never"}]}


def _simulate(tmp_path: Path, path: Path, policies=None) -> int:
    config = {**SIM, "stream": {"class_path": "continual.retraining.TimeOrdered",
                                "init_args": {"path": str(path), "chunk_size": 50}}}
    if policies is not None:
        config["policies"] = policies
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(config))
    return main(["simulate", "--config", str(tmp_path / "sim.yaml"), "--output",
                 str(tmp_path / "out"), "--name", "s", "--quiet", "true"])


def _digits(n=200):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:n] / 16).astype("float32"), y[:n].astype("int64")


@pytest.mark.parametrize(("corrupt", "named"), [
    (lambda x, y: y.__setitem__(120, -1), "chunk 3/4 holds 1 labels outside 0..9"),
    (lambda x, y: x.__setitem__((70, 3), np.nan), "chunk 2/4 holds 1 samples with NaN/inf"),
], ids=["label-minus-one", "nan-input"])
def test_simulate_refuses_unclean_chunks_for_a_policy_without_a_quality_gate(
        corrupt, named, tmp_path, capsys):
    x, y = _digits()
    corrupt(x, y)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    code = _simulate(tmp_path, tmp_path / "mine.npz")
    err = one_line(capsys)
    assert code == 2 and named in err and "quality_gate" in err and "allowed" in err, err
    assert "--resume" not in err and not (tmp_path / "out" / "s").exists()


def test_a_quality_gate_lets_the_same_chunks_through(tmp_path, capsys):
    x, y = _digits()
    y[120], x[70, 3] = -1, np.nan
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    code = _simulate(tmp_path, tmp_path / "mine.npz",
                     [{"name": "gated", "quality_gate": {"max_copies": 3}}])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "out" / "s" / "simulation.json").read_text())
    dropped = sum(q["nonfinite"] + q["bad_label"] for q in saved["runs"]["gated"]["quality"])
    assert dropped == 2


class NotAllowed:
    pass


def _pt(obj):
    return lambda p: torch.save(obj, p)


def _truncated_npz(p):
    x, y = _digits()
    np.savez(p, x=x, y=y)
    p.write_bytes(p.read_bytes()[:300])


@pytest.mark.parametrize(("name", "write"), [
    ("pickled.pt", _pt({"x": torch.zeros(3, 2), "y": torch.zeros(3, dtype=torch.long),
                        "extra": NotAllowed()})),
    ("truncated.npz", _truncated_npz),
    ("strings.npz", lambda p: np.savez(p, x=np.array(["a", "b"]), y=np.array([0, 1]))),
    ("zero_d.npz", lambda p: np.savez(p, x=np.array(1.0), y=np.array(0))),
    ("list.pt", _pt([torch.zeros(2, 2), torch.zeros(2)])),
    ("tensor.pt", _pt(torch.zeros(4, 2))),
    ("float_labels.npz", lambda p: np.savez(p, x=np.zeros((2, 2)), y=np.array([0.5, 1.0]))),
    ("no_y.npz", lambda p: np.savez(p, x=np.zeros((2, 2)))),
    ("garbage.pt", lambda p: p.write_bytes(b"\x00\x01not a zip")),
    ("a_folder.npz", lambda p: p.mkdir()),
], ids=lambda v: v if isinstance(v, str) else "")
def test_time_ordered_files_that_cannot_be_used_end_in_one_line(name, write, tmp_path, capsys):
    from continual.retraining import TimeOrdered

    path = tmp_path / name
    write(path)
    with pytest.raises(ConfigError) as caught:
        TimeOrdered(str(path)).build()
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "allowed" in message, message
    assert _simulate(tmp_path, path) == 2
    assert str(path) in one_line(capsys)


# --- dataset files: labels out of range and damaged files -------------------------------------

def _cifar_batch(path: Path, labels, key=b"labels") -> None:
    data = np.zeros((len(labels), 3 * 32 * 32), dtype=np.uint8)
    path.write_bytes(pickle.dumps({b"data": data, key: list(labels)}))


@pytest.mark.parametrize("label", [99, -1])
def test_cifar_labels_out_of_range_name_the_file(label, tmp_path):
    from continual.data.vision import read_cifar_batch

    _cifar_batch(tmp_path / "data_batch_1", [0, 1, label, 3])
    with pytest.raises(ConfigError, match=r"data_batch_1 holds 1 label outside 0\.\.9 .*allowed"):
        read_cifar_batch(tmp_path / "data_batch_1", b"labels", 10)


def test_a_cifar_batch_that_is_a_list_is_refused_by_name(tmp_path):
    from continual.data.vision import read_cifar_batch

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ConfigError, match="data_batch_1 is not a CIFAR python batch"):
        read_cifar_batch(tmp_path / "data_batch_1", b"labels", 10)


def _idx(path: Path, array: np.ndarray, code: int = 0x08) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", n)
                                                         for n in array.shape)
    path.write_bytes(header + array.tobytes())


def test_idx_labels_below_zero_name_the_file(tmp_path):
    from continual.data.mnist import idx_folder

    _idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((40, 4, 4), dtype=np.uint8))
    labels = np.tile(np.arange(4, dtype=np.int8), 10)
    labels[7] = -1
    _idx(tmp_path / "t10k-labels-idx1-ubyte", labels, code=0x09)
    with pytest.raises(ConfigError, match=r"t10k-labels-idx1-ubyte holds 1 label outside"):
        idx_folder(tmp_path)


@pytest.mark.parametrize("cut", [6, 11, 17], ids=["inside-dim-1", "inside-dim-3", "in-data"])
def test_an_idx_file_cut_short_is_refused_by_name(cut, tmp_path):
    from continual.data.mnist import read_idx

    _idx(tmp_path / "images", np.zeros((2, 3, 3), dtype=np.uint8))
    path = tmp_path / "images"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ConfigError, match="images .*truncated or corrupt"):
        read_idx(path)


def test_a_single_bad_label_is_not_reported_as_a_stratification_failure():
    from continual.data.splits import stratified_splits

    y = torch.arange(40) % 4
    y[5] = 7
    with pytest.raises(ConfigError, match=r"toy holds 1 label outside 0\.\.3") as caught:
        stratified_splits(torch.zeros(40, 2), y, name="toy", n_classes=4, val_fraction=0.1,
                          test_fraction=0.2, seed=0)
    assert "stratified" not in str(caught.value)


def _png_header(width: int, height: int) -> bytes:
    """A PNG's first bytes declaring ``width`` × ``height`` (its pixels need not follow)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def test_a_decompression_bomb_png_is_refused_by_name(tmp_path):
    from PIL import Image

    from continual.data.image_folder import image_folder

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    (tmp_path / "a" / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    Image.new("RGB", (4, 4)).save(tmp_path / "b" / "fine.png")  # every class has an image
    with pytest.raises(ConfigError, match="bomb.png is refused as a decompression bomb"):
        image_folder(tmp_path)


# --- where the run writes ---------------------------------------------------------------------

def test_an_existing_file_as_output_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert main(["run", "--output", str(tmp_path / "file"), "--name", "x", *FAST]) == 2
    err = one_line(capsys)
    assert "output=" in err and "allowed: a writable folder" in err
    assert (tmp_path / "file").read_text() == "mine"


def test_a_name_too_long_is_refused(tmp_path, capsys):
    assert main(["run", "--output", str(tmp_path), "--name", "x" * 300, *FAST]) == 2
    err = one_line(capsys)
    assert "cannot be created" in err and "255 bytes" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path, capsys):
    (tmp_path / "ro").mkdir(mode=0o555)
    assert main(["run", "--output", str(tmp_path / "ro"), "--name", "x", *FAST]) == 2
    assert "Permission denied" in one_line(capsys)


@pytest.mark.parametrize("where", ["output", "run"])
def test_a_folder_the_user_may_not_create_is_refused(where, tmp_path, capsys, monkeypatch):
    """As root ignores modes, the refusal itself is what the file system is made to say."""
    import errno

    real = Path.mkdir
    refused = tmp_path / "ro" if where == "output" else tmp_path / "ro" / "x"

    def mkdir(self, *args, **kwargs):
        if self == refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert main(["run", "--output", str(tmp_path / "ro"), "--name", "x", *FAST]) == 2
    err = one_line(capsys)
    assert "Permission denied" in err and "allowed: a writable" in err, err


@pytest.mark.parametrize("code", ["EACCES", "EFBIG", "ENOSPC"])
def test_a_write_that_fails_before_any_task_finished_says_so(code, tmp_path, capsys,
                                                             monkeypatch):
    import errno

    import continual.experiment as experiment

    def refuse(path, content):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(path))

    monkeypatch.setattr(experiment, "atomic_write", refuse)
    assert main(["run", "--output", str(tmp_path), "--name", "x", *FAST]) == 1
    err = one_line(capsys)
    assert os.strerror(getattr(errno, code)) in err and "config.yaml" in err
    assert "nothing to resume" in err and not (tmp_path / "x").exists()


# --- W&B without a reachable server -----------------------------------------------------------

def test_wandb_with_a_key_but_no_server_logs_offline_in_bounded_time(tmp_path, capsys,
                                                                      monkeypatch):
    import time

    for key in list(os.environ):
        if key.startswith("WANDB_") or key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", "f" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # closed: refused at once
    monkeypatch.setenv("WANDB_SILENT", "true")
    start = time.monotonic()
    code = main(["run", "--output", str(tmp_path), "--name", "w", "--logger", "[wandb]", *FAST])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert time.monotonic() - start < 120
    [note] = [line for line in err.splitlines() if line.startswith("W&B:")]
    assert "http://127.0.0.1:9 cannot be reached" in note and "logging offline" in note
    assert list((tmp_path / "w").glob("wandb/offline-run-*"))


def test_wandb_that_fails_to_start_online_falls_back_to_offline(tmp_path, capsys, monkeypatch):
    from pathlib import Path as P

    import continual.tracking.loggers as loggers

    monkeypatch.setattr(loggers, "wandb_offline_fallback", lambda run_dir: False)
    real, tries = loggers._start_wandb, []

    def flaky(logger, quiet=False):
        tries.append(logger)
        if len(tries) == 1:
            raise TimeoutError("Run initialization has timed out after 30.0 sec.")
        real(logger, quiet)

    monkeypatch.setattr(loggers, "_start_wandb", flaky)
    made = loggers.make_loggers(["wandb"], P(tmp_path), name="w")
    err = capsys.readouterr().err
    assert len(tries) == 2 and "did not accept the run (Run initialization has timed out" in err
    assert "logging offline" in err
    made[0].experiment.finish()


# --- a damaged checkpoint or config -----------------------------------------------------------

def test_a_checkpoint_that_is_a_folder_is_refused_by_name(tmp_path, capsys):
    assert main(["run", "--output", str(tmp_path), "--name", "r", *FAST]) == 0
    capsys.readouterr()
    (tmp_path / "r" / "checkpoint.pt").unlink()
    (tmp_path / "r" / "checkpoint.pt").mkdir()
    assert main(["run", "--resume", str(tmp_path / "r")]) == 2
    assert "checkpoint.pt is unreadable" in one_line(capsys)


@pytest.mark.parametrize("content", [b"\x00\xff\xfe\x80binary", b"seed: 1\n\x00\x9c\xff"],
                         ids=["binary", "text-then-binary"])
def test_a_config_file_of_binary_bytes_ends_in_one_line(content, tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(content)
    code = main(["run", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "o")])
    err = one_line(capsys)
    assert code == 2 and "c.yaml" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("content", "named"), [("", "holds nothing"), ("[1, 2]", "a list"),
                                                 ("just words", "a str")])
def test_a_config_that_is_not_a_mapping_is_named(content, named, tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(content)
    assert main(["run", "--config", str(tmp_path / "c.yaml")]) == 2
    err = one_line(capsys)
    assert "c.yaml" in err and named in err and "allowed: a YAML mapping" in err, err


def test_a_report_into_a_file_is_refused(tmp_path, capsys):
    _results(tmp_path / "run")
    (tmp_path / "f").write_text("mine")
    assert main(["report", str(tmp_path / "run"), "--output", str(tmp_path / "f")]) == 2
    assert "output=" in one_line(capsys)


@pytest.mark.parametrize(("url", "why"), [("http://127.0.0.1:9", "cannot be reached"),
                                          ("http://[::1", "Invalid IPv6 URL")])
def test_wandbs_server_check_says_why_without_raising(url, why, monkeypatch):
    from continual.tracking.loggers import wandb_unreachable

    for key in list(os.environ):
        if key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    problem = wandb_unreachable(timeout=2.0)
    assert problem is not None and why in problem and url in problem
