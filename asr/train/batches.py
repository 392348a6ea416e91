"""Training batches indexed by step: the batch of step k is a pure function of (seed, k).

Examples are drawn epoch by epoch from a seeded permutation; each example's augmentation is seeded by
(seed, step, position in the global batch). So a resumed run sees exactly the batches an uninterrupted run
would, whatever the number of loader workers, and under DDP rank r simply builds its shard of the same
global batch (positions r, r + world, ...).
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import Dataset

from asr.config import TrainConfig
from asr.errors import InputError
from asr.features import FeatureSpec, fit_window
from asr.features.logmel import LogMel
from asr.labels import UNKNOWN
from asr.text import phonemes, spell
from asr.train.augment import SpecAugment, mix_noise, random_eq, reverberate, speed_perturb, vtlp_matrix


@contextmanager
def seeded_python_random(seed: int):
    """Run a block with Python's `random` seeded, restoring its state afterwards."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class StepBatches(Dataset):
    """`batches[k]` -> this rank's shard of the global batch of step k. Subclasses build and collate examples."""

    def __init__(self, source, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise InputError(f"train.batch_size {batch_size} must be divisible by the {world} DDP processes")
        if len(source) == 0:
            raise InputError("the training split is empty")
        self.source, self.batch_size, self.seed, self.rank, self.world = source, batch_size, seed, rank, world

    def global_indices(self, step: int) -> np.ndarray:
        """Source indices of the whole global batch of `step` (walking through seeded epoch permutations)."""
        n = len(self.source)
        positions = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        out = np.empty(len(positions), dtype=np.int64)
        for epoch in np.unique(positions // n):
            sel = positions // n == epoch
            out[sel] = np.random.default_rng([self.seed, int(epoch)]).permutation(n)[positions[sel] % n]
        return out

    def __getitem__(self, step: int):
        indices = self.global_indices(step)
        examples = [
            self.example(int(indices[j]), np.random.default_rng([self.seed, step, j]))
            for j in range(self.rank, self.batch_size, self.world)
        ]
        return self.collate(examples)

    def example(self, index: int, rng: np.random.Generator):
        raise NotImplementedError

    def collate(self, examples: list):
        raise NotImplementedError


class KeywordBatches(StepBatches):
    """(features [b, frames, n_mels], labels [b], spelled words [sum of lengths], word lengths [b]) with speed
    perturbation, speaking rate, room, channel, noise, vocal-tract warp and SpecAugment. The word's letters or
    phonemes (the folder name of each clip, empty for `_silence_`; length -1 for a crop of background speech, which
    has no transcript) feed the optional auxiliary CTC loss."""

    def __init__(
        self, source, spec: FeatureSpec, train: TrainConfig, seed: int, rank: int = 0, world: int = 1, speech=None
    ):
        super().__init__(source, train.batch_size, seed, rank, world)
        self.speech = speech  # sentences (LibriSpeech layout): 1 s crops of them are `_unknown_` examples
        self.spec, self.train = spec, train
        self.logmel = LogMel(spec)
        self.spec_augment = SpecAugment(train.spec_freq_mask, train.spec_time_mask)
        self.noises = [n for n in source.background_noise() if len(n)]
        wants_phones = train.spell_ctc and train.ctc_units == "phones"  # espeak-ng runs only when the loss is on
        self.phones = phonemes([p.parent.name for p, *_ in source.items]) if wants_phones else None

    def example(self, index: int, rng: np.random.Generator):
        word = self.source.items[index][0].parent.name if index < len(self.source.items) else ""
        if self.speech is not None and rng.random() < self.train.speech_negatives:
            # Background speech, cropped anywhere: the partial words and word joins a stream's windows hold.
            sentence = self.speech[int(rng.integers(len(self.speech)))][0]
            wave, word, label = sentence, None, self.source.labels.index(UNKNOWN)
        else:
            with seeded_python_random(int(rng.integers(2**62))):  # the loader crops `_silence_` with `random`
                wave, label = self.source[index]
        low, high = self.train.speed_perturb
        if high > low:
            wave = speed_perturb(wave, rng.uniform(low, high), self.spec.sample_rate)
        wave = fit_window(wave, self.spec.clip_samples, rng)
        if self.train.reverb_prob and rng.random() < self.train.reverb_prob:
            wave = reverberate(wave, rng, self.spec.sample_rate)
        if self.train.eq_prob and rng.random() < self.train.eq_prob:
            wave = random_eq(wave, rng, self.spec.sample_rate)
        if self.noises and rng.random() < self.train.noise_prob:
            wave = mix_noise(wave, self.noises, self.train.snr_db, rng)
        warp = rng.uniform(*self.train.vtlp) if self.train.vtlp != (1.0, 1.0) else 1.0  # no draw when off
        if word is None:  # a crop of a sentence: no transcript, so no CTC target (length -1 marks it)
            target = None
        else:
            target = self.phones.get(word.lower(), []) if self.phones is not None else spell(word)
        return wave.astype(np.float32), (label, target), warp, int(rng.integers(2**62))  # replay exactly

    def collate(self, examples: list):
        with torch.no_grad():  # one batched STFT; then each example's own SpecAugment masks
            feats = self.logmel(torch.from_numpy(np.stack([w for w, _, _, _ in examples])))
        if self.train.vtlp != (1.0, 1.0):
            spec = self.spec
            warps = [vtlp_matrix(a, spec.n_mels, spec.f_min, spec.f_max) for _, _, a, _ in examples]
            feats = feats @ torch.from_numpy(np.stack(warps)).transpose(1, 2)
        feats = torch.stack([self.spec_augment(f, s) for f, (*_, s) in zip(feats, examples, strict=True)])
        labels = torch.tensor([y for _, (y, _), _, _ in examples])
        spelled = [ids for _, (_, ids), _, _ in examples]
        lengths = torch.tensor([-1 if ids is None else len(ids) for ids in spelled])
        return feats, labels, torch.tensor([i for ids in spelled if ids for i in ids], dtype=torch.long), lengths


class SentenceBatches(StepBatches):
    """(features [b, T, n_mels] zero-padded, lengths [b], targets [sum of target lengths], target lengths [b])."""

    def __init__(
        self, source, tokenizer, spec: FeatureSpec, train: TrainConfig, seed: int, rank: int = 0, world: int = 1
    ):
        super().__init__(source, train.batch_size, seed, rank, world)
        self.tokenizer, self.spec, self.train = tokenizer, spec, train
        self.logmel = LogMel(spec)
        self.spec_augment = SpecAugment(train.spec_freq_mask, train.spec_time_mask)

    def example(self, index: int, rng: np.random.Generator):
        wave, text, _ = self.source[index]
        low, high = self.train.speed_perturb
        if high > low:
            wave = speed_perturb(wave, rng.uniform(low, high), self.spec.sample_rate)
        # The device pads the last window of a recording with digital silence (asr.runtime.ctc_stream); a model
        # that never heard any misreads the words before it (BENCHMARKS.md section 8).
        if self.train.silence_pad_s:  # no draw when off
            wave = np.pad(wave, (0, int(rng.uniform(0, self.train.silence_pad_s) * self.spec.sample_rate)))
        with torch.no_grad():
            feats = self.logmel(torch.from_numpy(wave.astype(np.float32))[None])[0]
        feats = self.spec_augment(feats, int(rng.integers(2**62)))
        return feats, self.tokenizer.encode(text)

    def collate(self, examples: list):
        return collate_sentences(examples)


def collate_sentences(examples: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """[(features [T, F], token ids)] -> padded features, lengths, concatenated targets, target lengths."""
    lengths = torch.tensor([len(f) for f, _ in examples])
    feats = torch.nn.utils.rnn.pad_sequence([f for f, _ in examples], batch_first=True)
    targets = torch.tensor([t for _, ids in examples for t in ids], dtype=torch.long)
    return feats, lengths, targets, torch.tensor([len(ids) for _, ids in examples])
