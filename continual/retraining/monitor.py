"""Monitoring without labels: input drift (an MMD test on the network's embeddings) and a
label-free performance estimate (mean max-softmax confidence), and the HTML report.

Why our own MMD test: alibi-detect is not installable next to this torch, and frouros' MMD
runs its permutations in NumPy one at a time; the test is a dozen lines of batched torch here
(all permutations as one matrix product), seeded, and works on whatever the network embeds.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from continual.errors import ConfigError
from continual.module import ContinualModule


def mmd_permutation_test(x: Tensor, y: Tensor, permutations: int = 500, seed: int = 0
                         ) -> tuple[float, float]:
    """Squared MMD between samples ``x [n, d]`` and ``y [m, d]`` and its permutation p-value.

    Gaussian kernel with the median heuristic bandwidth (median pairwise squared distance of
    the pooled sample); the biased estimate ``w^T K w`` with ``w = 1/n`` on ``x``, ``-1/m`` on
    ``y``; the p-value is ``(1 + #{permuted >= observed}) / (1 + permutations)``.
    """
    z = torch.cat([x, y]).double().flatten(1)  # [N, d]
    n, total = len(x), len(x) + len(y)
    d2 = torch.cdist(z, z).pow(2)
    positive = d2[d2 > 0]
    scale = positive.median() if len(positive) else torch.tensor(1.0, dtype=torch.float64)
    kernel = torch.exp(-d2 / scale)  # [N, N]
    w = torch.cat([torch.full((n,), 1.0 / n), torch.full((total - n,), -1.0 / (total - n))])
    w = w.double()
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(total, generator=generator)
                         for _ in range(permutations)])  # [P, N]
    weights = torch.cat([w[None], w[order]])  # [P + 1, N]: the observed split first
    stats = ((weights @ kernel) * weights).sum(dim=1)
    observed = float(stats[0])
    p_value = (1 + int((stats[1:] >= stats[0] - 1e-12).sum())) / (1 + permutations)
    return observed, p_value


def feature_ks_test(x: Tensor, y: Tensor) -> tuple[float, Tensor]:
    """Two-sample Kolmogorov–Smirnov tests of each feature of ``x [n, d]`` against ``y
    [m, d]``: the Bonferroni-corrected smallest p-value (``min(1, d · min p)``, a level-α test
    that no feature moved) and every feature's own p-value ``[d]``."""
    from scipy.stats import ks_2samp

    a, b = x.double().flatten(1).numpy(), y.double().flatten(1).numpy()
    p = torch.as_tensor(ks_2samp(a, b, axis=0).pvalue, dtype=torch.float64).reshape(-1)
    p = torch.nan_to_num(p, nan=1.0)  # a feature constant on both sides did not move
    return min(1.0, float(p.min()) * len(p)), p


def embeddings(module: ContinualModule, x: Tensor, batch_size: int = 1024) -> tuple[Tensor, Tensor]:
    """The inputs of the network's last linear layer (its embedding) and the softmax outputs."""
    last = [m for m in module.net.modules() if isinstance(m, nn.Linear)]
    seen: list[Tensor] = []
    handle = last[-1].register_forward_pre_hook(
        lambda _, args: seen.append(args[0].detach().flatten(1))) if last else None
    was_training = module.training
    module.eval()
    probs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                logits = module(x[start:start + batch_size].to(module.device))
                probs.append(logits.softmax(dim=1).cpu())
                if handle is None:
                    seen.append(logits.detach())
    finally:
        if handle is not None:
            handle.remove()
        module.train(was_training)
    return torch.cat(seen).cpu(), torch.cat(probs)


class Monitor:
    """Input drift and estimated performance of the serving model, from inputs alone.

    The reference window is the held-out inputs of the batches the serving model learned from
    (never trained on, so their embeddings look like new data's would). Each check embeds both
    with the serving model and runs :func:`mmd_permutation_test` (the whole distribution) and,
    with ``feature_tests``, :func:`feature_ks_test` (each embedding feature on its own,
    Bonferroni-corrected: a shift confined to a few features, which a kernel over all of them
    can dilute, and the features that moved); either below ``alpha`` is input drift. It also
    compares the mean max-softmax confidence on the new inputs with the reference's.

    Args:
        alpha: significance level of the drift test.
        permutations: permutations of the test.
        max_samples: at most this many samples of each side enter the test (a seeded draw).
        max_confidence_drop: alarm when mean confidence falls more than this below the
            reference's; ``None`` disables it.
        trigger: an alarm also triggers retraining (on the labelled data available).
        feature_tests: also test each embedding feature (Kolmogorov–Smirnov).
    """

    def __init__(self, alpha: float = 0.01, permutations: int = 500, max_samples: int = 300,
                 max_confidence_drop: float | None = 0.1, trigger: bool = False,
                 feature_tests: bool = True) -> None:
        if not 0 < alpha < 1:
            raise ConfigError(f"alpha={alpha} is invalid; allowed: 0 < alpha < 1")
        if permutations < 1 or max_samples < 2:
            raise ConfigError(f"permutations={permutations}, max_samples={max_samples} are "
                              "invalid; allowed: permutations >= 1, max_samples >= 2")
        self.alpha, self.permutations, self.max_samples = alpha, permutations, max_samples
        self.max_confidence_drop, self.trigger = max_confidence_drop, trigger
        self.feature_tests = feature_tests

    def check(self, module: ContinualModule, reference: Tensor | None, x: Tensor, seed: int
              ) -> dict[str, Any]:
        """One monitoring row for new inputs ``x``."""
        generator = torch.Generator().manual_seed(seed)
        x = _at_most(x, self.max_samples, generator)
        new_emb, new_probs = embeddings(module, x)
        confidence = float(new_probs.max(dim=1).values.mean())
        row: dict[str, Any] = {"n": len(x), "mmd": None, "p_value": None, "drift": False,
                               "feature_p_value": None, "features_drifted": None,
                               "confidence": confidence, "reference_confidence": None,
                               "low_confidence": False}
        if reference is not None and len(reference) >= 2 and len(x) >= 2:
            reference = _at_most(reference, self.max_samples, generator)
            ref_emb, ref_probs = embeddings(module, reference)
            row["mmd"], row["p_value"] = mmd_permutation_test(ref_emb, new_emb,
                                                              self.permutations, seed)
            row["drift"] = row["p_value"] < self.alpha
            if self.feature_tests:
                row["feature_p_value"], each = feature_ks_test(ref_emb, new_emb)
                row["features_drifted"] = int((each < self.alpha / len(each)).sum())
                row["drift"] = row["drift"] or row["feature_p_value"] < self.alpha
            row["reference_confidence"] = float(ref_probs.max(dim=1).values.mean())
            row["low_confidence"] = (self.max_confidence_drop is not None and confidence <
                                     row["reference_confidence"] - self.max_confidence_drop)
        row["alarm"] = bool(row["drift"] or row["low_confidence"])
        parts = [f"p={row['p_value']:.4f}" if row["p_value"] is not None else "no reference",
                 f"confidence {confidence:.3f}"]
        if row["features_drifted"]:
            parts.insert(1, f"{row['features_drifted']} features moved")
        row["describe"] = ("input drift" if row["drift"] else "no input drift") + \
            (", confidence dropped" if row["low_confidence"] else "") + f" ({', '.join(parts)})"
        return row

    def __repr__(self) -> str:
        return (f"Monitor(alpha={self.alpha}, permutations={self.permutations}, max_samples="
                f"{self.max_samples}, max_confidence_drop={self.max_confidence_drop}, "
                f"trigger={self.trigger}"
                + ("" if self.feature_tests else ", feature_tests=False") + ")")


# A monitoring row's numbers, as logged (registry, W&B, CSV) under ``monitor/<key>``.
LOGGED = ("mmd", "p_value", "feature_p_value", "features_drifted", "confidence",
          "reference_confidence")


def logged_metrics(row: dict[str, Any]) -> dict[str, float]:
    """``monitor/*`` metrics of a monitoring row (absent numbers left out) and its alarm."""
    metrics = {f"monitor/{k}": float(row[k]) for k in LOGGED if row.get(k) is not None}
    return {**metrics, "monitor/alarm": float(row["alarm"])}


def _at_most(x: Tensor, n: int, generator: torch.Generator) -> Tensor:
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=generator)[:n]]


def write_report(state: dict[str, Any], path: Path, title: str) -> Path:
    """An HTML page: prequential accuracy with retrains, drift p-values, confidence, tables;
    its picture also as a PNG beside it (same name, ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from continual.result import atomic_write

    steps, rows = state["steps"], state["monitor"]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    xs = [s["step"] for s in steps]
    acc = [math.nan if s["accuracy"] is None else s["accuracy"] for s in steps]
    axes[0].plot(xs, acc, marker="o", label="prequential accuracy")
    for s in steps:  # a shadow's promotion comes at its verdict, a step that trains nothing
        if s["retrained"] or s["deployed"]:
            axes[0].axvline(s["step"], color="green" if s["deployed"] else "red", alpha=0.3)
    axes[0].set_ylabel("accuracy (labels)")
    axes[0].set_title("green: promoted · red: retrained, not promoted (rejected or in shadow)",
                      fontsize=9)
    mx = [r["step"] for r in rows]
    pv = [math.nan if r["p_value"] is None else max(r["p_value"], 1e-4) for r in rows]
    axes[1].semilogy(mx, pv, marker="o", color="purple", label="MMD p-value")
    axes[1].set_ylabel("drift p-value")
    for r in rows:
        if r["drift"]:
            axes[1].axvline(r["step"], color="purple", alpha=0.2)
    axes[2].plot(mx, [r["confidence"] for r in rows], marker="o", label="new inputs")
    axes[2].plot(mx, [math.nan if r["reference_confidence"] is None else
                      r["reference_confidence"] for r in rows], ls="--", label="reference")
    axes[2].set_ylabel("mean max-softmax")
    axes[2].set_xlabel("step (batch)")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write(path.with_suffix(".png"), buffer.getvalue())  # the picture on its own too
    image = base64.b64encode(buffer.getvalue()).decode()
    head = ["step", "batch", "accuracy", "retrained", "promoted", "version", "skipped"]
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            s["step"], s["hash"][:12], "—" if s["accuracy"] is None else f"{s['accuracy']:.3f}",
            s["retrained"], s["deployed"], s["version"] or "", s["skipped"] or "")) + "</tr>"
        for s in steps)
    alarms = "".join(f"<li>step {r['step']}: {html.escape(r['describe'])}</li>"
                     for r in rows if r["alarm"])
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>"
            f"<img src='data:image/png;base64,{image}' alt='monitoring over time'>"
            f"<h2>Alarms</h2><ul>{alarms or '<li>none</li>'}</ul><h2>Steps</h2>"
            "<table border='1' cellspacing='0'><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + f"</tr>{table}</table></body></html>\n")
    atomic_write(path, page)
    return path
