"""Retraining strategies, one file per method."""

from continual.strategies.agem import AGEM
from continual.strategies.base import Strategy
from continual.strategies.compose import Compose
from continual.strategies.der import DER
from continual.strategies.derpp import DERpp
from continual.strategies.er_ace import ERACE
from continual.strategies.ewc import EWC
from continual.strategies.finetune import FineTune
from continual.strategies.full_retrain import FullRetrain
from continual.strategies.gdumb import GDumb
from continual.strategies.joint import Joint
from continual.strategies.lwf import LwF
from continual.strategies.mas import MAS
from continual.strategies.online_ewc import OnlineEWC
from continual.strategies.replay import ExperienceReplay
from continual.strategies.si import SI

__all__ = [
    "AGEM", "DER", "ERACE", "EWC", "MAS", "SI", "Compose", "DERpp", "ExperienceReplay",
    "FineTune", "FullRetrain", "GDumb", "Joint", "LwF", "OnlineEWC", "Strategy",
]
