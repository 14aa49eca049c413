"""``continual simulate``: files, logs, W&B offline, and one-line errors."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from wandb_records import read_offline_run

from continual.cli import main
from continual.retraining.config import simulate_parser

SMALL = {
    "stream": {"class_path": "continual.retraining.DriftingChunks",
               "init_args": {"n_steps": 10, "chunk_size": 70, "drift_at": 6}},
    "trainer": {"max_epochs": 5},
    "initial_chunks": 2,
    "policies": [
        {"name": "never"},
        {"name": "every 2", "trigger": {"class_path": "EveryK", "init_args": {"k": 2}},
         "deploy_gate": {"min_gain": 0.0, "holdout_chunks": 2}},
    ],
}


def write(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    code = main(["simulate", "--config", write(tmp, SMALL), "--output", str(tmp), "--name",
                 "s", "--quiet", "true", "--logger", "[csv, wandb]"])
    assert code == 0
    return tmp / "s"


def test_simulate_writes_every_step_decision_table_and_plot(simulated):
    saved = json.loads((simulated / "simulation.json").read_text())
    assert saved["drift_points"] == [6] and saved["n_chunks"] == 10
    assert set(saved["runs"]) == {"never", "every 2"}
    steps = saved["runs"]["every 2"]["steps"]
    assert [s["step"] for s in steps] == list(range(10))
    assert [s["step"] for s in steps if s["retrained"]] == [1, 3, 5, 7, 9]
    decisions = saved["runs"]["every 2"]["decisions"]
    assert [d["step"] for d in decisions] == [1, 3, 5, 7, 9]
    assert all({"champion_accuracy", "negative_flip_rate", "reason"} <= set(d) for d in decisions)
    assert saved["summary"]["never"]["retrains"] == 0
    assert saved["summary"]["every 2"]["retrains"] == 4  # the first model is not a retrain
    table = (simulated / "policies.txt").read_text()
    assert "never" in table and "every 2" in table and "mean acc %" in table
    assert (simulated / "accuracy_over_time.png").read_bytes()[:4] == b"\x89PNG"


def test_csv_log_holds_the_prequential_accuracy_of_simulation_json(simulated):
    saved = json.loads((simulated / "simulation.json").read_text())
    for name, folder in (("never", "never"), ("every 2", "every_2")):
        with open(simulated / folder / "logs" / "metrics.csv") as f:
            rows = [r for r in csv.DictReader(f) if r.get("prequential/accuracy")]
        expected = [s["accuracy"] for s in saved["runs"][name]["steps"]
                    if s["accuracy"] is not None]
        assert [float(r["prequential/accuracy"]) for r in rows] == pytest.approx(expected)


def test_wandb_offline_run_has_steps_summary_and_decisions(simulated):
    saved = json.loads((simulated / "simulation.json").read_text())
    [offline] = (simulated / "every_2").glob("wandb/offline-run-*")
    [table] = offline.glob("files/media/table/decisions_*.table.json")  # a plain file
    decisions = json.loads(table.read_text())
    steps = decisions["columns"].index("step")
    assert [row[steps] for row in decisions["data"]] == [
        d["step"] for d in saved["runs"]["every 2"]["decisions"]]
    wb = read_offline_run(offline)  # the rest only in the record log
    assert wb.step_metrics["prequential/*"] == "step"
    acc = [h["prequential/accuracy"] for h in wb.history if "prequential/accuracy" in h]
    assert acc == pytest.approx([s["accuracy"] for s in saved["runs"]["every 2"]["steps"]
                                 if s["accuracy"] is not None])
    assert wb.summary["mean_accuracy"] == pytest.approx(
        saved["summary"]["every 2"]["mean_accuracy"])
    assert wb.summary["decisions/_type"] == "table-file"
    assert wb.group == "s" and "simulate" in wb.tags


@pytest.mark.parametrize("change, message", [
    ({"policies": [{"name": "a"}, {"name": "a"}]}, "policies: names ['a'] are invalid"),
    ({"policies": [{"name": "a", "trigger": {"class_path": "NoSuchTrigger"}}]}, "policies"),
    ({"policies": [{"name": "a", "trigger": {"class_path": "DriftDetector",
                                             "init_args": {"detector": "Magic"}}}]},
     "detector"),
    ({"stream": {"class_path": "continual.retraining.DriftingChunks",
                 "init_args": {"n_steps": 40, "chunk_size": 100}}},
     "stream: n_steps × chunk_size = 4000 exceeds the 1797 samples"),
    ({"trainer": {"devices": 2}}, "trainer.devices=2 is invalid for simulate"),
    ({"policies": [{"name": "a", "trigger": {"class_path": "EveryK", "init_args": {"k": 0}}}]},
     "k=0 is invalid; allowed: 1 or more"),  # the class's own ConfigError, not jsonargparse's
    ({"stream": {"class_path": "continual.retraining.TimeOrdered",
                 "init_args": {"path": "missing.npz"}}}, "path='missing.npz' does not exist"),
])
def test_bad_simulation_configs_fail_in_one_line(tmp_path, capsys, change, message):
    code = main(["simulate", "--config", write(tmp_path, {**SMALL, **change}), "--output",
                 str(tmp_path / "out"), "--name", "bad"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "bad" / "simulation.json").exists()


def test_time_ordered_user_data_runs_from_an_npz(tmp_path, capsys):
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "mine.npz", x=(x[:600] / 16).astype("float32"), y=y[:600])
    config = {**SMALL, "stream": {"class_path": "continual.retraining.TimeOrdered",
                                  "init_args": {"path": str(tmp_path / "mine.npz"),
                                                "chunk_size": 100, "drift_points": [3]}}}
    assert main(["simulate", "--config", write(tmp_path, config), "--output", str(tmp_path),
                 "--name", "mine", "--quiet", "true"]) == 0
    saved = json.loads((tmp_path / "mine" / "simulation.json").read_text())
    assert saved["n_chunks"] == 6 and saved["drift_points"] == [3]


@pytest.mark.parametrize("path", sorted(Path("configs/retraining").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_retraining_configs_parse_and_instantiate(path):
    parser = simulate_parser()
    init = parser.instantiate(parser.parse_args(["--config", str(path)]))
    assert len({p.name for p in init.policies}) == len(init.policies) >= 2


def test_simulate_prints_a_summary_by_default_and_every_step_on_request(tmp_path, capsys):
    config = write(tmp_path, SMALL)
    assert main(["simulate", "--config", config, "--output", str(tmp_path), "--name", "a",
                 "--logger", "[]"]) == 0
    summary = capsys.readouterr().out
    assert main(["simulate", "--config", config, "--output", str(tmp_path), "--name", "b",
                 "--logger", "[]", "--steps", "true"]) == 0
    steps = capsys.readouterr().out
    assert "[every 2] step 1: retrained" not in summary
    assert "[every 2] step 1: retrained" in steps
    assert "policy " in summary and summary.rstrip().splitlines()[-1].startswith("results in")


def test_the_table_prints_whole_chunk_counts_as_integers():
    from continual.retraining.results import COLUMNS, policy_table

    row = {key: 0.5 for key, _ in COLUMNS}
    cells = {v: policy_table({"p": {**row, "chunks_to_recover": v}}).splitlines()[1].split()
             for v in (5.0, 2.5, float("inf"))}
    recover = [title for _, title in COLUMNS].index("recover") + 1
    assert [cells[v][recover] for v in (5.0, 2.5, float("inf"))] == ["5", "2.5", "never"]


def test_more_than_four_policies_are_drawn_in_small_panels_and_plot_selects_a_few(tmp_path):
    many = {**SMALL, "policies": [{"name": f"p{i}"} for i in range(6)],
            "stream": {**SMALL["stream"], "init_args": {"n_steps": 5, "chunk_size": 40,
                                                        "drift_at": 3}},
            "trainer": {"max_epochs": 1}}
    from matplotlib.image import imread

    assert main(["simulate", "--config", write(tmp_path, many), "--output", str(tmp_path),
                 "--name", "all", "--logger", "[]", "--quiet", "true"]) == 0
    assert main(["simulate", "--config", write(tmp_path, many), "--output", str(tmp_path),
                 "--name", "two", "--logger", "[]", "--quiet", "true",
                 "--plot", "[p0, p3]"]) == 0
    panels = imread(tmp_path / "all" / "accuracy_over_time.png")
    one_axis = imread(tmp_path / "two" / "accuracy_over_time.png")
    assert panels.shape[0] > one_axis.shape[0]  # two rows of three panels, against one axis


def test_plot_naming_an_unknown_policy_is_one_line(tmp_path, capsys):
    assert main(["simulate", "--config", write(tmp_path, SMALL), "--output", str(tmp_path),
                 "--logger", "[]", "--plot", "[nope]"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "plot" in err and "nope" in err
    assert not list(tmp_path.glob("simulate*"))  # nothing written
