"""Load an export directory (manifest.json + .tflite) as a ready model, its labels and its front end.

The manifest is the contract between export and device: labels, feature settings and tensor shapes come
from it, never from code, so a retrained model cannot silently run with a mismatched front end.
"""

from __future__ import annotations

import json
from pathlib import Path

from asr.files import write_text_atomic
from asr.runtime.frontend import FeatureSpec
from asr.runtime.interpreter import TFLiteModel

OUTPUT_KINDS = ("logits", "probabilities", "log_probs")  # log_probs: per-frame CTC outputs (asr.runtime.ctc)


class BundleError(ValueError):
    """An export directory that cannot be used; the message names the file and the problem."""


def read_manifest(export_dir: str | Path) -> dict:
    """The parsed manifest.json of `export_dir`, with its required keys checked."""
    path = Path(export_dir) / "manifest.json"
    if not Path(export_dir).is_dir():
        raise BundleError(f"{export_dir}: not an export directory (expected manifest.json and a .tflite model)")
    if not path.is_file():
        raise BundleError(f"{path}: missing; is {export_dir} the output of `asr export`?")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON: {e}") from None
    missing = [key for key in ("labels", "features", "models") if key not in manifest]
    if missing:
        raise BundleError(f"{path}: missing key(s) {missing}")
    if output_kind(manifest) not in OUTPUT_KINDS:
        raise BundleError(f"{path}: output.kind {output_kind(manifest)!r} is not one of {OUTPUT_KINDS}")
    return manifest


def write_manifest(export_dir: str | Path, manifest: dict) -> Path:
    return write_text_atomic(Path(export_dir) / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def save_threshold(
    export_dir: str | Path, threshold: float, chosen_by: str, label_thresholds: dict[str, float] | None = None
) -> None:
    """Record the detector threshold chosen for this model (and any keyword's own) in its manifest, where
    `asr demo` looks first."""
    manifest = read_manifest(export_dir)
    manifest["detector"] = {"threshold": threshold, "chosen_by": chosen_by}
    if label_thresholds:
        manifest["detector"]["label_thresholds"] = dict(label_thresholds)
    write_manifest(export_dir, manifest)


def output_kind(manifest: dict) -> str:
    """What the model outputs: "logits" (the default) or "probabilities"."""
    return manifest.get("output", {}).get("kind", "logits")


def load_exported(
    export_dir: str | Path, *, precision: str = "int8", backend: str | None = None
) -> tuple[TFLiteModel, list[str], FeatureSpec, dict]:
    """(model, labels, FeatureSpec, manifest) of an export directory; shapes are checked against the spec."""
    manifest = read_manifest(export_dir)
    manifest_path = Path(export_dir) / "manifest.json"
    if precision not in manifest["models"]:
        raise BundleError(f"{manifest_path}: no {precision!r} model (has {sorted(manifest['models'])})")
    try:
        spec = FeatureSpec.from_dict(manifest["features"])
    except (TypeError, ValueError) as e:
        raise BundleError(f"{manifest_path}: bad 'features': {e}") from None
    labels = list(manifest["labels"])
    model = TFLiteModel(Path(export_dir) / manifest["models"][precision], backend=backend)
    expected = (1, spec.num_frames(spec.clip_samples), spec.n_mels)
    if model.input_shape != expected:
        raise BundleError(
            f"{model.path}: input shape {list(model.input_shape)} does not match the manifest's features "
            f"({list(expected)}: {spec.clip_seconds} s of {spec.n_mels} mels)"
        )
    if model.output_shape[-1] != len(labels):
        raise BundleError(f"{model.path}: {model.output_shape[-1]} outputs but {len(labels)} labels in {manifest_path}")
    return model, labels, spec, manifest
