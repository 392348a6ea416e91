"""Mixup: the model sees each example blended with one partner of the batch, and the loss follows the blend."""

import torch
import torch.nn.functional as F

from asr.train.tasks import mixup_loss


class Recorder(torch.nn.Module):
    """A linear classifier that keeps the last input it saw."""

    def __init__(self, size: int, classes: int):
        super().__init__()
        self.linear = torch.nn.Linear(size, classes)

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.linear(x.flatten(1))


def test_mixup_blends_each_example_with_one_partner_and_the_loss_alike():
    torch.manual_seed(0)
    batch = 8
    features = torch.eye(batch)[:, None, :]  # example i is the unit vector e_i: a blend shows who was mixed in
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    model = Recorder(batch, 4)
    loss = mixup_loss(model, features, labels, alpha=0.4, smoothing=0.0)

    seen = model.seen[:, 0, :]
    assert torch.allclose(seen.sum(1), torch.ones(batch))  # convex blends
    own = seen.diagonal()
    lam = float(own.min())  # rows paired with themselves show 1.0, every other row lambda
    assert 0.0 < lam < 1.0
    assert torch.allclose(own[own < 1 - 1e-6], torch.full_like(own[own < 1 - 1e-6], lam))
    partners = [int((row - lam * torch.eye(batch)[i]).argmax()) for i, row in enumerate(seen)]
    assert sorted(partners) == list(range(batch))  # a shuffled copy of the batch

    logits = model.linear(seen)
    expected = lam * F.cross_entropy(logits, labels) + (1 - lam) * F.cross_entropy(logits, labels[partners])
    assert torch.allclose(loss, expected, atol=1e-6)
    assert not torch.allclose(loss, F.cross_entropy(logits, labels), atol=1e-3)  # the partners' labels count
