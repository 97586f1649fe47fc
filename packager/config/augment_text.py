"""data.augment: training-only variants of text (packager.data.text_augment)."""

from __future__ import annotations

from pydantic import Field

from packager.config.base import Config


class TextAugmentConfig(Config):
    """Training-only augmentation of text (packager.data.text_augment): variants of every
    training text appended to the training split; never validation, test or calibration."""

    copies: int = Field(1, ge=1, le=10, description="variants of each training text")
    synonyms: float = Field(
        0.15, ge=0, le=1, description="share of words swapped for a WordNet synonym"
    )
    span_delete: float = Field(
        0.1, ge=0, lt=1, description="one span of this share of the words deleted"
    )
    seed: int = 0
    wordnet: str = Field(
        "/usr/share/wordnet", description="WordNet 3.0's data.* files (the wordnet-base package)"
    )
