"""A frozen ``timm`` Vision Transformer with learnable prompts: the network of the prompt-based
methods (:class:`~continual.strategies.L2P`, :class:`~continual.strategies.CodaPrompt`).

The backbone never trains; a prompt pool turns the frozen [CLS] feature of an image (the
query) into prompt tokens, which are inserted after the [CLS] token at the input of the
transformer blocks (prompt tuning), and a linear head reads the prompted [CLS] output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from continual.errors import ConfigError, missing_extra


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ConfigError(missing_extra("a timm ViT backbone", "timm", "prompt")) from None
    return timm


def cached_weights(name: str) -> Path | None:
    """The file of ``name``'s default pretrained weights in the Hugging Face hub cache, or
    ``None``: looked up only, never downloaded."""
    cfg = _timm().models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(cfg.hf_hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def vit_backbone(name: str = "vit_base_patch16_224", checkpoint_path: str | None = None,
                 pretrained: bool = True, **kwargs: Any) -> nn.Module:
    """A frozen ``timm`` ViT without a head (``num_classes=0``), in eval mode.

    Weights come from ``checkpoint_path`` (a file of the user's) or, failing that, from the
    hub cache when ``name``'s weights are there; nothing is downloaded. ``pretrained=False``
    keeps timm's random initialisation (tests). ``kwargs`` go to ``timm.create_model``.
    """
    timm = _timm()
    if name not in timm.list_models():
        raise ConfigError(f"ViT {name!r} is not a timm model; allowed: a name from "
                          "timm.list_models('vit_*')")
    path = Path(checkpoint_path) if checkpoint_path else cached_weights(name) if pretrained \
        else None
    if pretrained and path is None:
        raise ConfigError(f"no weights for {name!r}: not in the hub cache and no "
                          "checkpoint_path; allowed: checkpoint_path=<file>, or pretrained=false")
    if path is not None and not path.is_file():
        raise ConfigError(f"checkpoint_path={str(path)!r} is not a file; allowed: a timm "
                          "checkpoint (.safetensors, .pth, .bin)")
    overlay = {"pretrained_cfg_overlay": {"file": str(path)}} if path is not None else {}
    vit = timm.create_model(name, pretrained=path is not None, num_classes=0, **overlay,
                            **kwargs)
    return vit.requires_grad_(False).eval()


def prompted_tokens(vit: nn.Module, x: Tensor, prompts: Tensor | None = None) -> Tensor:
    """The ViT's output tokens ``[B, 1 + P + N, D]`` for images ``x``, with ``prompts``
    ``[B, P, D]`` inserted after the [CLS] token once the position embeddings are added
    (prompts carry no position). Without prompts: timm's own ``forward_features``."""
    if getattr(vit, "cls_token", None) is None or getattr(vit, "reg_token", None) is not None \
            or getattr(vit, "no_embed_class", True) or getattr(vit, "dynamic_img_size", True):
        raise ConfigError(f"{type(vit).__name__} is not a plain timm ViT; allowed: a timm "
                          "VisionTransformer with a class token, no register tokens")
    patches = vit.patch_embed(x)  # [B, N, D]
    tokens = torch.cat([vit.cls_token.expand(len(x), -1, -1), patches], dim=1) + vit.pos_embed
    tokens = vit.norm_pre(vit.patch_drop(vit.pos_drop(tokens)))
    if prompts is not None:
        tokens = torch.cat([tokens[:, :1], prompts.to(tokens.dtype), tokens[:, 1:]], dim=1)
    return vit.norm(vit.blocks(tokens))


class PromptedViT(nn.Module):
    """Frozen ViT + prompt ``pool`` + linear head: logits ``[B, n_classes]``.

    ``pool(query)`` maps the frozen [CLS] features ``[B, D]`` to prompts ``[B, P, D]`` and
    an auxiliary loss (L2P's key matching, CODA's orthogonality), kept in ``aux_loss`` for the
    strategy to weigh. The backbone stays in eval mode and has no trainable parameter.

    Args:
        pool: an ``L2PPool`` or ``CodaPool`` whose ``dim`` is the ViT's width.
        n_classes: outputs of the head.
        backbone: a ViT module, or a timm name given to :func:`vit_backbone`.
        checkpoint_path, pretrained: weights of a named backbone (see :func:`vit_backbone`).
    """

    def __init__(self, pool: nn.Module, n_classes: int = 10,
                 backbone: nn.Module | str = "vit_base_patch16_224",
                 checkpoint_path: str | None = None, pretrained: bool = True) -> None:
        super().__init__()
        if isinstance(backbone, str):
            backbone = vit_backbone(backbone, checkpoint_path, pretrained)
        self.backbone = backbone.requires_grad_(False).eval()
        self.pool = pool
        self.head = nn.Linear(backbone.num_features, n_classes)
        self.aux_loss: Tensor = torch.zeros(())

    def train(self, mode: bool = True) -> PromptedViT:
        super().train(mode)
        self.backbone.eval()  # frozen: dropout and drop-path off, always
        return self

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            query = prompted_tokens(self.backbone, x)[:, 0]
        prompts, self.aux_loss = self.pool(query)
        return self.head(prompted_tokens(self.backbone, x, prompts)[:, 0])
