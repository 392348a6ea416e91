"""bench.asr_peers' scoring logic: text normalisation and transcript -> intent, on the generated sentences corpus.
No peer is installed or run here (they are bench-only)."""

from asr.data.librispeech import LibriSpeech
from asr.data.recipe import load_recipe
from asr.runtime.intent import SLOT
from bench.peers.sentence_systems import grammar_jsgf
from bench.peers.sentences import IntentMatcher, load_utterances, normalise, same_request, wer


def whisper_style(request) -> str:
    """How Whisper writes a request: capitalised, numbers as digits, a full stop."""
    values = iter(request.slots[name] for name in SLOT.findall(request.intent))
    text = SLOT.sub(lambda _m: str(next(values)), request.intent)
    return text[0].upper() + text[1:] + "."


def test_normalise_spells_numbers_and_drops_punctuation():
    assert normalise("Set a 20-minute timer for the pizza.") == "set a twenty minute timer for the pizza"
    assert normalise("Dim the hallway lights to 45%!") == "dim the hallway lights to forty five percent"
    assert normalise("Wake me up at 7:00 'tomorrow'") == "wake me up at seven o'clock tomorrow"
    assert normalise("Set the thermostat to 21°") == "set the thermostat to twenty one degrees"


def test_references_and_whisper_style_transcripts_map_to_their_request(sentences_corpus):
    matcher = IntentMatcher(load_recipe().grammar)
    items = LibriSpeech(sentences_corpus, "test-clean").items
    for _, text, _ in items:
        assert normalise(text) == text.lower()  # the corpus's references are already in normal form
        request = matcher.exact(text)
        assert request is not None and request.text == text.lower()
        assert same_request(matcher.nearest(whisper_style(request)), request), whisper_style(request)
    utts = load_utterances(sentences_corpus, "test-clean", matcher)
    assert len(utts) == len(items)
    assert [u.heldout for u in utts] == [matcher.exact(t).intent in matcher.heldout for _, t, _ in items]


def test_nearest_request_reads_misheard_words_and_nothing_from_silence():
    matcher = IntentMatcher(load_recipe().grammar)
    request = matcher.nearest("At 22 minutes to the egg timer.")
    assert (request.intent, request.slots) == (
        "add {minutes} minutes to the {name} timer",
        {"minutes": 22, "name": "eggs"},
    )
    assert matcher.is_heldout(request)
    assert matcher.nearest(" . ") is None
    assert not same_request(None, request)


def test_wer_counts_an_empty_transcript_as_all_deleted():
    assert wer(["turn on the lamp", "pause the music"], ["Turn on the lamp.", ""]) == 3 / 7


def test_the_jsgf_grammar_holds_every_template_and_slot():
    grammar = load_recipe().grammar
    jsgf = grammar_jsgf(grammar)
    assert jsgf.count("( ") == len(grammar["templates"])
    for name in [*grammar["slots"], *grammar["numbers"]]:
        assert f"\n<{name}> = " in jsgf
    assert "<minutes> = two | three |" in jsgf and "| fifty nine;" in jsgf
