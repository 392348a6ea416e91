"""The device-side CTC decoders (asr.runtime.ctc, asr.runtime.intent, asr.runtime.words) against references: torch's
CTC loss, sentencepiece's own encoder, log-probabilities that spell a known request of the default grammar, and a
word n-gram that must tell homophones apart."""

from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asr.data.recipe import DATA_DIR
from asr.errors import InputError
from asr.export.words import arpa, write_word_files
from asr.runtime.ctc import Pieces, greedy, keyword_score, sequence_log_likelihood, sequences_log_likelihood
from asr.runtime.intent import IntentDecoder, load_grammar, requests
from asr.runtime.phrases import phrase_units
from asr.runtime.words import LEXICON_FILE, LM_FILE, WordDecoder, read_lexicon
from asr.text import PHONES, Tokenizer, phonemes

GRAMMAR = DATA_DIR / "grammar.toml"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    """A sentencepiece model trained on the grammar's requests (upper case, as LibriSpeech transcripts are)."""
    rng = np.random.default_rng(0)
    texts = [r.text.upper() for r in rng.permutation(requests(load_grammar(GRAMMAR)))[:3000]]
    return Tokenizer.train(texts, tmp_path_factory.mktemp("sp") / "sp", 96)


def _pieces(tokenizer: Tokenizer) -> Pieces:
    sp = tokenizer._sp
    return Pieces(
        [sp.IdToPiece(i) for i in range(sp.GetPieceSize())], [sp.GetScore(i) for i in range(sp.GetPieceSize())]
    )


def _spell(ids: list[int], units: int, rng, frames_per_unit: int = 3, noise: float = 1.0) -> np.ndarray:
    """Noisy log-probabilities [T, units + 1] whose best path says `ids` (blank = units, between and around)."""
    path = [units] * 2
    for u in ids:
        path += [u] * frames_per_unit + [units]
    logits = rng.normal(0, noise, (len(path) + 2, units + 1))
    path += [units, units]
    logits[np.arange(len(path)), path] += 6.0
    return torch.log_softmax(torch.from_numpy(logits), -1).numpy()


def test_pieces_encode_and_decode_like_sentencepiece(tokenizer):
    pieces = _pieces(tokenizer)
    for text in ["TURN ON THE KITCHEN LIGHTS", "SET A TIMER FOR FORTY TWO MINUTES", "PLAY JAZZ IN THE GARAGE"]:
        assert pieces.encode_text(text) == tokenizer.encode(text)
        assert pieces.decode(tokenizer.encode(text)) == tokenizer.decode(tokenizer.encode(text))
    assert pieces.encode_word("kitchen") == pieces.encode_word("KITCHEN")  # upper-case models take any case


def test_forward_algorithm_matches_torch_ctc_loss():
    """One sequence or many of different lengths at once (as the grammar decoder scores its requests)."""
    rng = np.random.default_rng(1)
    lp = torch.log_softmax(torch.from_numpy(rng.normal(0, 2, (30, 6))), -1)
    targets = ([1, 2, 3], [2, 2, 4, 1], [0], [3, 3, 3, 0, 1, 4, 4])
    losses = [
        -float(
            torch.nn.functional.ctc_loss(
                lp[:, None],
                torch.tensor([target]),
                torch.tensor([30]),
                torch.tensor([len(target)]),
                blank=5,
                reduction="sum",
            )
        )  # fmt: skip
        for target in targets
    ]
    for target, loss in zip(targets, losses, strict=True):
        assert sequence_log_likelihood(lp.numpy(), target, 5) == pytest.approx(loss, abs=1e-6)
    np.testing.assert_allclose(sequences_log_likelihood(lp.numpy(), targets, 5), losses, atol=1e-6)


def test_grammar_decoding_recovers_intent_and_slots(tokenizer):
    pieces = _pieces(tokenizer)
    decoder = IntentDecoder(load_grammar(GRAMMAR), pieces.encode_text, len(pieces.pieces))
    rng = np.random.default_rng(2)
    for text, intent, slots in [
        ("SET THE THERMOSTAT TO TWENTY ONE DEGREES", "set the thermostat to {degrees} degrees", {"degrees": 21}),
        (
            "TURN OFF THE BEDROOM FAN",
            "turn {onoff} the {room} {device}",
            {"onoff": "off", "room": "bedroom", "device": "fan"},
        ),
    ]:
        lp = _spell(pieces.encode_text(text), len(pieces.pieces), rng, noise=1.5)
        request = decoder.decode(lp)
        assert (request.text.upper(), request.intent, request.slots) == (text, intent, slots)
        # At this noise free decoding garbles the words; on clean frames it reads them, as does a lexicon.
        assert pieces.decode(greedy(lp, len(pieces.pieces))) != text
        clean = _spell(pieces.encode_text(text), len(pieces.pieces), rng, noise=0.3)
        assert pieces.decode(greedy(clean, len(pieces.pieces))) == text
        lexicon = {w: pieces.encode_word(w) for w in [*text.split(), "KITCHEN"]}
        peaky = _spell(pieces.encode_text(text), len(pieces.pieces), rng, frames_per_unit=1, noise=0.3)
        assert WordDecoder(pieces.pieces, lexicon).decode(peaky) == text  # CTC's one frame a unit


def test_grammar_decoding_over_phones_recovers_intent_and_slots():
    """A phone model's requests are written in espeak-ng phones, as `asr transcribe --grammar` writes them: a
    template's words need no pieces trained on them, only phones."""
    phone_model = SimpleNamespace(pieces=None, units=PHONES, lexicon={})
    decoder = IntentDecoder(load_grammar(GRAMMAR), partial(phrase_units, phone_model), len(PHONES))
    rng = np.random.default_rng(4)
    text = "dim the living room lights to forty percent"
    lp = _spell(phrase_units(phone_model, text), len(PHONES), rng, noise=1.5)
    request = decoder.decode(lp)
    assert (request.text, request.intent) == (text, "dim the {room} lights to {percent} percent")
    assert request.slots == {"room": "living room", "percent": 40}
    assert greedy(lp, len(PHONES)) != phrase_units(phone_model, text)  # free decoding garbles it at this noise


def _arpa_prob(entries: dict, context: tuple, word: str) -> float:
    """p(word | context) by ARPA's backoff rule: the entry if present, else the context's backoff times the
    probability given a shorter context."""
    if (*context, word) in entries:
        return 10 ** entries[(*context, word)][0]
    return 10 ** entries.get(context, (0.0, 0.0))[1] * _arpa_prob(entries, context[1:], word)


def test_word_ngram_is_a_distribution_in_arpa():
    """The written n-gram, read back by ARPA's rule, gives every context a distribution over the vocabulary
    (words never in a sentence included) and </s>."""
    sentences = [s.split() for s in ["turn on the light", "turn off the light", "turn the light on", "play jazz"]]
    vocab = ["turn", "on", "off", "the", "light", "play", "jazz", "blues"]
    for order in (1, 2, 3):
        entries = {}
        for line in arpa(sentences, vocab, order=order).splitlines():
            fields = line.split("\t")
            if len(fields) >= 2:
                entries[tuple(fields[1].split())] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
        for context in [(), ("<s>",), ("turn",), ("the",), ("blues",), ("turn", "the"), ("play", "jazz")]:
            context = context[len(context) - order + 1 :] if order > 1 else ()
            total = sum(_arpa_prob(entries, context, w) for w in [*vocab, "</s>", "<unk>"])
            assert total == pytest.approx(1.0, abs=2e-3), (order, context, total)
        assert _arpa_prob(entries, (), "blues") > 0  # in the lexicon, never in a sentence
    with pytest.raises(ValueError, match="no sentences"):
        arpa([], vocab)


def test_the_word_ngram_tells_homophones_apart(tmp_path):
    """ "right" and "write" are the same phones: only the word n-gram of the training sentences can choose, and the
    export's files (asr.export.words) give the device that choice."""
    assert phonemes(["right"])["right"] == phonemes(["write"])["write"]
    sentences = ["turn right at the light", "please write a note", "write it down", "turn right now"]
    spell = lambda words: {w: [PHONES[i] for i in ids] for w, ids in phonemes(words).items()}  # noqa: E731
    write_word_files(tmp_path, sentences, ["please", "stop"], spell)
    lexicon = read_lexicon(tmp_path / LEXICON_FILE, PHONES)
    assert {"right", "write", "stop"} <= set(lexicon)
    decoder = WordDecoder(PHONES, lexicon, tmp_path / LM_FILE)
    rng = np.random.default_rng(5)
    for text in ["please write a note", "turn right at the light", "write it down"]:
        lp = _spell([u for w in text.split() for u in lexicon[w]], len(PHONES), rng, frames_per_unit=1, noise=0.5)
        assert decoder.decode(lp) == text
    # Without the n-gram the phones cannot choose: a lexicon with only "write" and one with only "right" read the same
    # phones at the same score. (With both, how the beam breaks that tie varies from process to process.)
    lp = np.ascontiguousarray(_spell(lexicon["please"] + lexicon["write"], len(PHONES), rng, 1, 0.5), np.float32)
    scores = {}
    for word, other in (("write", "right"), ("right", "write")):
        flat = WordDecoder(PHONES, {w: u for w, u in lexicon.items() if w != other})
        assert flat.decode(lp) == f"please {word}"
        scores[word] = flat.decoder.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])[0].score
    assert scores["write"] == scores["right"]
    (tmp_path / "bad.arpa").write_text("not an n-gram\n")
    with pytest.raises(InputError, match=r"bad\.arpa: not a language model KenLM reads \(first non-empty line"):
        WordDecoder(PHONES, lexicon, tmp_path / "bad.arpa")


def test_keyword_score_finds_the_phrase_and_ranks_others_lower(tokenizer):
    pieces = _pieces(tokenizer)
    rng = np.random.default_rng(3)
    lp = _spell(pieces.encode_text("PLEASE TURN THE KITCHEN LIGHTS ON"), len(pieces.pieces), rng)
    said, s0, s1 = keyword_score(lp, pieces.encode_text("KITCHEN LIGHTS"), len(pieces.pieces))
    unsaid, _, _ = keyword_score(lp, pieces.encode_text("GARAGE HEATER"), len(pieces.pieces))
    assert said > -0.1 > unsaid
    kitchen = len(pieces.encode_text("PLEASE TURN THE")) * 4 + 2  # frames before "KITCHEN" in _spell's layout
    assert abs(s0 - kitchen) <= 4 and s1 > s0
