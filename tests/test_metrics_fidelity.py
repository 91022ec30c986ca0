"""FID/IS through torch-fidelity against an independent numpy/scipy oracle (acceptance 1)."""
import numpy as np
import pytest
import scipy.linalg
import torch

pytest.importorskip("torch_fidelity")

from rcdm_lib.metrics.fidelity import (ImageTensorDataset, fidelity_metrics, frechet_distance, inception_score,
                                       register_encoder_extractor)


def scipy_frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fixed_features():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 12))
    mix = rng.normal(size=(12, 12)) / 3
    b = rng.normal(size=(300, 12)) @ (np.eye(12) + mix) + 0.7
    return a, b


def test_frechet_distance_matches_scipy_oracle():
    a, b = fixed_features()
    ours, oracle = frechet_distance(a, b), scipy_frechet(a, b)
    assert ours == pytest.approx(oracle, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_gaussians_closed_form():
    # identical covariances: FID is the squared mean difference (up to sampling error of cov)
    a, _ = fixed_features()
    assert frechet_distance(a, a + 2.0) == pytest.approx(12 * 4.0, rel=1e-9)


def test_registered_extractor_fid_through_calculate_metrics():
    """The full torch-fidelity path (datasets, registered extractor, no Inception download)."""
    g = torch.Generator().manual_seed(0)
    real = torch.rand(96, 3, 8, 8, generator=g) * 2 - 1
    fake = (torch.rand(80, 3, 8, 8, generator=g) * 1.6 - 0.9).clamp(-1, 1)
    proj = torch.randn(3 * 4 * 4, 10, generator=g)

    def encoder(x):
        return torch.nn.functional.avg_pool2d(x, 2).flatten(1) @ proj

    head = torch.nn.Linear(10, 5)
    name = register_encoder_extractor("test-pool-proj", encoder, logits=head)
    r = fidelity_metrics(real, fake, extractor=name, isc=True, isc_splits=4, batch_size=32, cuda=False)
    # the oracle sees exactly the uint8 images torch-fidelity sees
    to_feats = lambda imgs: encoder(ImageTensorDataset(imgs).images.float() / 127.5 - 1).double().numpy()  # noqa: E731
    oracle = scipy_frechet(to_feats(fake), to_feats(real))
    assert r["fid"] == pytest.approx(oracle, rel=1e-6)
    assert r["extractor"] == name and r["n_real"] == 96 and r["n_fake"] == 80
    assert r["is_mean"] >= 1.0
    # registering the same name again replaces it rather than failing
    register_encoder_extractor("test-pool-proj", encoder)


def test_inception_score_bounds():
    # one-hot confident, uniform over C classes -> IS = C; all the same class -> IS = 1
    c = 6
    logits = torch.full((600, c), -50.0)
    logits[torch.arange(600), torch.arange(600) % c] = 50.0
    mean, _ = inception_score(logits, splits=1)   # one split: the class histogram is exactly uniform
    assert mean == pytest.approx(c, rel=1e-6)
    same = torch.zeros(100, c)
    same[:, 0] = 50.0
    assert inception_score(same, splits=2)[0] == pytest.approx(1.0, abs=1e-9)


class _Payload:
    """Unpickling this runs code: it creates the folder `marker` (what a malicious checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.mkdir, (self.marker,)


def test_an_inception_file_that_would_run_code_is_refused_before_torch_fidelity_reads_it(tmp_path):
    """torch-fidelity 0.4 loads a given Inception file with weights_only=False: our check must stop a payload."""
    from rcdm_lib.metrics.fidelity import INCEPTION

    marker, bad = tmp_path / "pwned", tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({"fc.weight": _Payload(marker)}, bad)
    images = torch.zeros(4, 3, 16, 16)
    with pytest.raises(ValueError, match=r"holds Python objects besides tensors, which are not loaded here because loading them could run code"):
        fidelity_metrics(images, images, extractor=INCEPTION, weights_path=bad, cuda=False)
    assert not marker.exists()
    torch.load(bad, weights_only=False)   # the payload is real: unpickled without the check, it runs
    assert marker.is_dir()


def test_inception_needs_a_local_file_and_names_a_wrong_one(tmp_path):
    from rcdm_lib.metrics.fidelity import INCEPTION

    images = torch.zeros(4, 3, 16, 16)
    with pytest.raises(FileNotFoundError, match="set metrics.inception_weights"):
        fidelity_metrics(images, images, extractor=INCEPTION, cuda=False)   # never the hub cache or a download
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(ValueError, match="other.pth do not fit inception-v3-compat"):
        fidelity_metrics(images, images, extractor=INCEPTION, weights_path=other, cuda=False)


def test_checked_inception_weights_give_torch_fidelitys_fid(tmp_path):
    """A tensors-only Inception file (random weights) goes through the check: the FID equals the one computed from
    the same network's 2048-d features by torch-fidelity's formula."""
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from official_files import write_inception_file
    from rcdm_lib.metrics.fidelity import INCEPTION

    path = write_inception_file(tmp_path)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(6, 3, 24, 24, generator=g) * 2 - 1, torch.rand(6, 3, 24, 24, generator=g) * 2 - 1
    r = fidelity_metrics(real, fake, extractor=INCEPTION, weights_path=path, isc=False, batch_size=6, cuda=False)
    with mock.patch("torch.load", return_value=torch.load(path, weights_only=True)):
        net = FeatureExtractorInceptionV3("check", ["2048"], str(path))
    with torch.no_grad():
        feats = [net(ImageTensorDataset(x).images)[0].double() for x in (fake, real)]
    assert r["fid"] == pytest.approx(frechet_distance(*feats), rel=1e-6, abs=1e-6)
