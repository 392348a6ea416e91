"""Pick how each accented voice (data/recipe.toml [accents]) is told to say each keyword.

A Czech, Finnish or Catalan festival voice reads "yes" with its own spelling rules; a respelling in its own
orthography ("ies") gets closer to the English word. Each candidate is spoken at three tempos and scored by
pocketsphinx's US English model with a grammar of the keywords, common words and near-misses: the count of
times it heard the keyword meant, summed over the voices of a language. The best per language (ties and
all-zero rows: the first candidate, the plain respelling) is printed as the [respell.*] tables of the recipe.

    python tools/pick_respellings.py
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from asr.data.engines import Utterance, synthesize
from asr.data.recipe import Speaker, load_recipe
from asr.peers.pocketsphinx import GrammarRecognizer

CANDIDATES = {
    "marvin": ["marvin", "maarvin", "marvinn", "maarvinn"],
    "yes": ["ies", "jes", "yes", "iess", "jess"],
    "no": ["nou", "no", "noou", "nouu"],
    "up": ["ap", "app", "ep", "aap", "epp"],
    "down": ["daun", "dawn", "daaun", "dauun"],
    "left": ["left", "lefft"],
    "right": ["rait", "rajt", "raait", "rrait"],
    "on": ["on", "onn", "aon", "an"],
    "off": ["of", "off", "oof", "aaf"],
    "stop": ["stop", "stopp", "staap", "stap"],
    "go": ["gou", "go", "goou", "geu"],
}
STRETCHES = (0.9, 1.1, 1.3)
PAD = np.zeros(3000, np.float32)  # pocketsphinx wants silence around a word


def main() -> None:
    recipe = load_recipe()
    words = recipe.words
    labels = ["_silence_", "_unknown_", *words["keywords"]]
    judge = GrammarRecognizer(labels, words["common"][:60] + words["near_miss"])
    scores: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for voice, accent in recipe.raw["accents"].items():
        engine, name = voice.split(":", 1)
        speaker = Speaker(voice, engine, name, "", 0.0, voice, "train", accent=accent)
        for word, candidates in CANDIDATES.items():
            utts = [Utterance(c, stretch=s) for c in candidates for s in STRETCHES]
            audios = synthesize(speaker, utts, recipe.apt_package(engine))
            for i, c in enumerate(candidates):
                heard = [
                    judge.hypothesis(np.concatenate([PAD, 0.3 * a / (np.abs(a).max() + 1e-6), PAD]))
                    for a in audios[i * len(STRETCHES) : (i + 1) * len(STRETCHES)]
                ]
                scores[voice][word][c] = sum(h == word for h in heard)
    for voice, by_word in scores.items():
        print(f"\n{voice}: candidate:times heard right (of {len(STRETCHES)})")
        for word, by_candidate in by_word.items():
            print(f"  {word:7s} " + "  ".join(f"{c}:{n}" for c, n in by_candidate.items()))
    for accent in sorted(set(recipe.raw["accents"].values())):
        voices = [v for v, a in recipe.raw["accents"].items() if a == accent]
        print(f"\n[respell.{accent}]")
        for word, candidates in CANDIDATES.items():
            total = {c: sum(scores[v][word][c] for v in voices) for c in candidates}
            best = max(candidates, key=lambda c: total[c])  # max keeps the first of equals
            print(f'{word} = "{best}"  # heard right {total[best]} of {len(STRETCHES) * len(voices)}')


if __name__ == "__main__":
    main()
