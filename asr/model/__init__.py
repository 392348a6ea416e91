"""The tied-depth Conformer (and the DS-CNN baseline): `build_model(config, num_outputs)`."""

from asr.model.build import build_model, num_outputs

__all__ = ["build_model", "num_outputs"]
