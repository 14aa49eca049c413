"""The names users bring from Avalanche, mammoth and the papers, resolved to this package's
strategies: ``--strategy ER``, ``--strategies naive,replay,derpp`` from any folder."""

from __future__ import annotations

# lower-case name → class in continual.strategies (its own names, lower-cased, resolve too)
ALIASES = {
    "naive": "FineTune", "sgd": "FineTune", "finetune": "FineTune", "fine_tune": "FineTune",
    "cumulative": "FullRetrain", "full_retrain": "FullRetrain", "fullretrain": "FullRetrain",
    "joint": "Joint", "jointtraining": "Joint",
    "er": "ExperienceReplay", "replay": "ExperienceReplay",
    "experience_replay": "ExperienceReplay", "experiencereplay": "ExperienceReplay",
    "der": "DER", "derpp": "DERpp", "der++": "DERpp", "er_ace": "ERACE", "erace": "ERACE",
    "xder": "XDER", "x-der": "XDER",
    "ewc": "EWC", "online_ewc": "OnlineEWC", "onlineewc": "OnlineEWC",
    "si": "SI", "synapticintelligence": "SI", "mas": "MAS", "lwf": "LwF",
    "agem": "AGEM", "a-gem": "AGEM", "gem": "GEM", "icarl": "ICaRL", "gdumb": "GDumb",
    "simplecil": "SimpleCIL", "ncm": "SimpleCIL", "ranpac": "RanPAC",
    "fecam": "FeCAM",
    "mir": "MIR", "rwalk": "RWalk", "riemannianwalk": "RWalk",
    "bic": "BiC", "lucir": "LUCIR", "packnet": "PackNet",
    "pnn": "PNN", "progressive": "PNN",
    "l2p": "L2P", "coda": "CodaPrompt", "codaprompt": "CodaPrompt",
    "coda-prompt": "CodaPrompt",
}


def resolve(name: str) -> str | None:
    """``continual.strategies.<Class>`` for a known name (any case), else ``None``."""
    target = ALIASES.get(name.strip().lower())
    return None if target is None else f"continual.strategies.{target}"
