"""The quality bar's neighbour reference: shape agreement of a representation's nearest train images."""
import pytest
import torch

from rcdm_lib.data.shapes import SHAPES
from rcdm_lib.training.quality import neighbour_agreement


def _data(n, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    return labels, g


def test_a_representation_that_encodes_the_label_has_full_agreement():
    labels, g = _data(600)
    feats = torch.nn.functional.one_hot(labels, 4).float() * 5 + 0.1 * torch.randn(600, 4, generator=g)
    assert neighbour_agreement(feats[:100], labels[:100], feats[100:], labels[100:], k=10) == 1.0


def test_a_representation_independent_of_the_label_agrees_at_chance():
    labels, g = _data(3000)
    feats = torch.randn(3000, 8, generator=g)
    a = neighbour_agreement(feats[:500], labels[:500], feats[500:], labels[500:], k=10)
    assert abs(a - 0.25) < 0.03  # chance with 4 balanced classes


def test_every_dimension_is_standardised_first():
    """A label carried by one unit-scale dimension is found even beside a dimension of huge spread; the
    result does not change when that dimension is rescaled."""
    labels, g = _data(1500)
    informative = labels.float()[:, None] + 0.05 * torch.randn(1500, 1, generator=g)
    nuisance = torch.randn(1500, 1, generator=g)
    a = neighbour_agreement(torch.cat([informative, nuisance], 1)[:300], labels[:300],
                            torch.cat([informative, nuisance], 1)[300:], labels[300:], k=5)
    scaled = torch.cat([informative, 1000 * nuisance], 1)
    b = neighbour_agreement(scaled[:300], labels[:300], scaled[300:], labels[300:], k=5)
    assert a == pytest.approx(b) and a > 0.6


def test_mismatched_dimensions_are_named():
    with pytest.raises(ValueError, match="query has 3 dimensions, the bank 4"):
        neighbour_agreement(torch.zeros(2, 3), torch.zeros(2), torch.zeros(5, 4), torch.zeros(5), k=2)


K = len(SHAPES)  # shape classes


class _FakeModels:
    """Samples whose top-left pixel carries a class index: slot "exact" draws the conditioning image's shape, slot
    "half" only for even images; the classifier reads that pixel."""

    profile = {"data": {"size": 16, "seed": 0}}
    slots = ("exact", "half")

    def __init__(self, shapes):
        self.shapes = shapes

    def rcdm_view(self, images):
        return torch.zeros(len(images), 3, 4, 4)

    def encode(self, slot, images):
        return torch.arange(len(images), dtype=torch.float32)[:, None]  # [N, 1]: the image's index

    def sample(self, slot, h=None, n_per=1, n=None, **kw):
        n = len(h) if h is not None else n
        x = torch.zeros(n, n_per, 3, 4, 4)
        if h is not None:
            idx = h[:, 0].long()
            right = torch.ones(n, dtype=torch.bool) if slot == "exact" else idx % 2 == 0
            x[:, :, 0, 0, 0] = torch.where(right, self.shapes[idx], (self.shapes[idx] + 1) % K).float()[:, None]
        return x


def _read_pixel(images):
    return torch.nn.functional.one_hot(images[:, 0, 0, 0].round().long(), K).float() * 20


def test_shape_agreement_and_its_standard_error_over_images():
    from rcdm_lib.data import FactorShapes
    from rcdm_lib.training.quality import shape_agreement

    n = 9
    shapes = FactorShapes("val", size=16, length=n, seed=0).batch(list(range(n)))[1]["shape"].long()
    res = shape_agreement(_FakeModels(shapes), _read_pixel, n_images=n, n_per=3, steps=2, n_reference=0)
    assert res["agreement"] == {"exact": 1.0, "half": pytest.approx(5 / 9)}
    per_image = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(n)])
    assert res["agreement_se"]["exact"] == 0.0
    assert res["agreement_se"]["half"] == pytest.approx(per_image.std().item() / 3)
    only = shape_agreement(_FakeModels(shapes), _read_pixel, n_images=n, n_per=3, steps=2, n_reference=0,
                           slots=["half"])
    assert list(only["agreement"]) == ["half"]


def test_shape_agreement_on_the_training_split_conditions_on_training_images():
    from rcdm_lib.data import FactorShapes
    from rcdm_lib.training.quality import shape_agreement

    n = 12
    train_shapes = FactorShapes("train", size=16, length=n, seed=0).batch(list(range(n)))[1]["shape"].long()
    fake = _FakeModels(train_shapes)  # draws the shapes of the training images
    on_train = shape_agreement(fake, _read_pixel, n_images=n, n_per=2, steps=2, n_reference=0, split="train")
    assert on_train["split"] == "train" and on_train["agreement"]["exact"] == 1.0
    on_val = shape_agreement(fake, _read_pixel, n_images=n, n_per=2, steps=2, n_reference=0)
    assert on_val["split"] == "val" and on_val["agreement"]["exact"] < 1.0  # val images have other shapes
    with pytest.raises(ValueError, match="split must be"):
        shape_agreement(fake, _read_pixel, n_images=n, n_per=2, steps=2, n_reference=0, split="test")


def test_shape_agreement_on_a_run_reads_the_data_from_its_settings():
    """scripts/evaluate.py hands it the run (rcdm_lib.run.Run: `profile` is the name, the settings hold the data)."""
    from rcdm_lib.data import FactorShapes
    from rcdm_lib.training.quality import shape_agreement

    class _FakeRun(_FakeModels):
        profile = "tiny"
        settings = {"profile": "tiny", "data": {"size": 16, "seed": 0}}

    n = 4
    shapes = FactorShapes("val", size=16, length=n, seed=0).batch(list(range(n)))[1]["shape"].long()
    res = shape_agreement(_FakeRun(shapes), _read_pixel, n_images=n, n_per=2, steps=2, n_reference=0)
    assert res["agreement"]["exact"] == 1.0
