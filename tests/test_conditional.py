"""samples_per_slot: a perfect decoder scores top1 = 1, a constant one scores chance."""
import torch
import torch.nn.functional as F

from rcdm_lib.analysis.conditional import plot_slot_grids, samples_per_slot


class Models:
    """Encoder = flattened pixels; the 'RCDM' either returns the conditioning image or a constant."""

    slots = ["pixels"]
    image_size = 4

    def __init__(self, perfect):
        self.perfect, self.last = perfect, None

    def encode(self, slot, x):
        return F.interpolate(x, size=(4, 4), mode="area").flatten(1)

    def rcdm_view(self, x):
        return F.interpolate(x, size=(4, 4), mode="area")

    def sample(self, slot, h, n_per, steps, seed):
        x = h.reshape(-1, 3, 4, 4) if self.perfect else torch.ones(h.shape[0], 3, 4, 4)
        return x.unsqueeze(1).expand(-1, n_per, -1, -1, -1)


def test_top1_separates_a_faithful_decoder_from_a_constant_one():
    images = torch.rand(6, 3, 8, 8) * 2 - 1
    good = samples_per_slot(Models(True), images, n_per=2, steps=1, seed=0, size=8)["pixels"]
    bad = samples_per_slot(Models(False), images, n_per=2, steps=1, seed=0, size=8)["pixels"]
    assert good.rows.shape == (6, 3, 3, 4, 4)
    assert good.top1 == 1.0 and bad.top1 <= 1 / 6 + 1e-6
    fig = plot_slot_grids({"pixels": good}, scale=2, title="t")
    assert len(fig.axes) == 1
