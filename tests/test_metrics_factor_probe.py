"""Factor probes: fitted on real FactorShapes images, they read factors back; agreement and chance."""
import pytest
import torch

from rcdm_lib.data import FACTORS, FactorShapes
from rcdm_lib.metrics.factor_probe import FactorProbe, agreement_table, factor_agreement


@pytest.fixture(scope="module")
def probe_and_data():
    torch.set_num_threads(1)
    tr = FactorShapes("train", size=16, length=768, seed=0)
    va = FactorShapes("val", size=16, length=256, seed=0)
    xtr, ftr = tr.batch(range(768))
    xva, fva = va.batch(range(256))
    probe = FactorProbe(max_iter=60).fit(xtr, ftr)
    return probe, xva, fva


def test_probe_reads_colour_and_background_from_pixels(probe_and_data):
    probe, xva, fva = probe_and_data
    s = probe.score(xva, fva)
    assert s["color"]["value"] > 0.6           # chance 1/8
    assert s["background"]["value"] > 0.5      # chance 1/len(BACKGROUNDS)
    assert s["x"]["metric"] == "r2"


def test_identical_images_agree_and_chance_is_low(probe_and_data):
    probe, xva, fva = probe_and_data
    pred = probe.predict(xva)
    t = agreement_table(pred, pred, FACTORS, permutations=5)
    assert all(v["kept"] == 1.0 for v in t.values())
    assert t["color"]["chance"] < 0.35
    # K samples per condition broadcast against one reference per condition
    rep = {k: v[:, None].repeat(1, 3) for k, v in pred.items()}
    a = factor_agreement(rep, pred, FACTORS)
    assert a["shape"].shape == (256, 3) and a["shape"].all()


def test_predict_before_fit_is_an_actionable_error():
    with pytest.raises(RuntimeError, match="fit"):
        FactorProbe().predict(torch.zeros(1, 3, 16, 16))
