"""asr data real-speech: which recordings are kept, what they say, and a clear error for a package apt cannot get."""

import shutil

import pytest

from asr.data import real_speech
from asr.errors import MissingError


def test_english_clips_that_may_hold_a_keyword_are_left_out():
    stamps = "usr/share/tuxpaint/stamps/animals"
    assert real_speech._tuxpaint(f"{stamps}/cat_desc_fr.ogg") == "fr"
    assert real_speech._tuxpaint(f"{stamps}/cat_desc.ogg") is None  # English
    assert real_speech._tuxpaint(f"{stamps}/firetruck.ogg") is None  # a sound effect, not speech
    voices = "usr/share/games/hedgewars/Data/Sounds/voices/Pirate"
    assert real_speech._hedgewars(f"{voices}/Hello.ogg") == "Pirate"
    assert (
        real_speech._hedgewars(f"{voices}/Yessir.ogg") is None
        and real_speech._hedgewars(f"{voices}/Comeonthen.ogg") is None
    )
    assert real_speech._per_language("usr/share/klettres/en_GB/alpha/a.ogg", "usr/share/klettres") is None
    assert real_speech._fillets("usr/share/games/fillets-ng/sound/city/cs/vit-m-hlava.ogg") == "m"


def test_a_tux_paint_recording_says_its_stamps_description_in_its_language(tmp_path):
    stamp = tmp_path / "stamps" / "cat.txt"
    stamp.parent.mkdir()
    stamp.write_text("A cat.\nfr.utf8=Un  chat.\nca.utf8=Un gat.\n", encoding="utf-8")
    assert real_speech._tuxpaint_text(stamp.with_name("cat_desc_fr.ogg")) == "Un chat."
    assert real_speech._tuxpaint_text(stamp.with_name("cat_desc_ca.ogg.ogg")) == "Un gat."  # as some are named
    assert real_speech._tuxpaint_text(stamp.with_name("cat_desc_de.ogg")) is None  # no German line
    assert real_speech._tuxpaint_text(stamp.with_name("dog_desc_fr.ogg")) is None  # no dog.txt
    assert real_speech._tuxpaint_text(tmp_path / "stamps" / "symbols" / "math" / "9_ca.ogg") == "9"


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="no apt-get on this machine")
def test_a_package_apt_cannot_get_names_itself_and_the_fix(tmp_path):
    with pytest.raises(MissingError, match="no-such-package-tied-asr is unavailable.*apt-get update"):
        real_speech.fetch("no-such-package-tied-asr", tmp_path)
    assert not (tmp_path / "no-such-package-tied-asr").exists()
