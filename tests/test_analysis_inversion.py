"""Inversion by gradient descent (Fig. 7, 9) and Jacobian rows (Fig. 8, 10) on small random encoders."""
import pytest
import torch

from rcdm_lib.analysis.inversion import eval_mode, invert, representation_distance
from rcdm_lib.analysis.jacobian import jacobian_rows, normalise_rows, top_dims
from rcdm_lib.config import load_profile
from rcdm_lib.encoders import TinyEncoder, TinyEncoderConfig
from rcdm_lib.encoders.registry import FrozenEncoder

SIZE = 16


def smooth_images(n, seed, size=SIZE, dtype=torch.float32):
    """Random low-frequency images [n, 3, size, size] in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear").to(dtype)


def small_encoder(layer="backbone", width=8, seed=0, dtype=torch.float32):
    """A random tiny encoder, frozen, in eval mode. Its BatchNorm running statistics are those of
    random images (one pass in training mode), so that, as in a trained encoder, the
    representation changes with the image instead of being dominated by a constant.
    stem_stride=1 keeps a 4x4 last feature map at 16px: with 2x2 (stride 2), a channel whose four
    positions are all below zero after the last ReLU has no gradient, and inversion stalls there."""
    torch.manual_seed(seed)
    model = TinyEncoder(TinyEncoderConfig(method="simclr", width=width, stem_stride=1, proj_hidden=32, proj_out=16,
                                          image_size=SIZE)).to(dtype)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.momentum = None                        # cumulative average: one pass sets the statistics
    with torch.no_grad():
        model.train()(smooth_images(256, seed + 100, dtype=dtype))
    rep_dim = model.backbone.rep_dim if layer == "backbone" else model.head_dim
    return FrozenEncoder(model.backbone, model.head, rep_dim, "simclr", layer)


def targets(encoder, n=4, seed=1):
    """Representations of random images (a real input exists for each target)."""
    with torch.no_grad():
        return encoder(smooth_images(n, seed))


def test_adam_distance_decreases_in_expectation():
    enc = small_encoder()
    h = targets(enc)
    runs = [invert(enc, h, "adam", iterations=120, image_size=SIZE, generator=torch.Generator().manual_seed(s))
            for s in range(4)]
    traj = torch.stack([r.rel_distance.mean(1) for r in runs]).mean(0)      # [T + 1], averaged over images and seeds
    assert traj.shape == (121,)
    checkpoints = traj[[0, 15, 30, 60, 120]]
    assert (checkpoints[1:] < checkpoints[:-1]).all(), checkpoints
    assert traj[-1] < 0.25 * traj[0]
    for r in runs:                                   # the tanh parametrisation keeps valid images
        assert r.images.shape == (4, 3, SIZE, SIZE) and r.images.abs().max() <= 1
        assert r.evaluations == 120


def test_adam_reaches_the_tiny_profile_target():
    """With the tiny profile's budget and step size, Adam on L2 reaches its target distance."""
    p = load_profile("tiny")["notebooks"]["12_inversion_jacobians"]
    enc = small_encoder("backbone")
    h = targets(enc)
    r = invert(enc, h, "adam", iterations=p["iterations"], lr=p["lr_adam"], image_size=SIZE,
               generator=torch.Generator().manual_seed(0))
    assert r.distance == "l2" and r.rel_distance[0].min() > 0.5
    assert float(r.final_rel_distance.max()) < p["target_rel_distance"], r.final_rel_distance
    # the reported distance is the real one of the returned images
    with torch.no_grad():
        rel = (enc(r.images) - h).norm(dim=1) / h.norm(dim=1)
    assert torch.allclose(rel.double(), r.final_rel_distance, atol=1e-5)


def test_adam_inverts_the_head():
    # A random projector has local minima (ReLU units that the start image leaves inactive):
    # some targets stay at a few percent, so the bound is on the typical image.
    enc = small_encoder("head")
    h = targets(enc)
    r = invert(enc, h, "adam", iterations=500, image_size=SIZE, generator=torch.Generator().manual_seed(0))
    assert float(r.final_rel_distance.median()) < 0.05 * float(r.rel_distance[0].median())


def test_lbfgs_on_cosine_matches_direction():
    enc = small_encoder("backbone")
    h = targets(enc)
    r = invert(enc, h, "lbfgs", iterations=60, image_size=SIZE, generator=torch.Generator().manual_seed(0))
    assert r.distance == "cosine"
    cos = r.cosine_distance.mean(1)
    assert cos[-1] < 0.01 * cos[0]
    assert cos[-1] <= cos[30] <= cos[10] <= cos[0]
    steps_run = 60 if r.stopped_at is None else r.stopped_at + 1
    assert r.evaluations >= steps_run                  # the line search evaluates at least once per iteration
    assert r.cosine_distance.shape == (61, 4)          # an early stop keeps the final distance to the end
    long = invert(enc, h, "lbfgs", iterations=400, image_size=SIZE, generator=torch.Generator().manual_seed(0))
    assert long.stopped_at is not None and long.stopped_at < 399, "L-BFGS should reach a fixed point"
    assert torch.equal(long.rel_distance[long.stopped_at + 1:], long.rel_distance[-1:].expand(400 - long.stopped_at, -1))


def test_unconstrained_parametrisation_and_given_start():
    enc = small_encoder()
    h = targets(enc, n=2)
    start = torch.zeros(2, 3, SIZE, SIZE)
    r = invert(enc, h, "adam", iterations=0, start=start, parametrization="none")
    assert torch.equal(r.images, start) and r.rel_distance.shape == (1, 2)
    with pytest.raises(ValueError, match="image_size"):
        invert(enc, h, "adam", iterations=1)
    with pytest.raises(ValueError, match="expected one of"):
        invert(enc, h, "sgd", iterations=1, image_size=SIZE)
    with pytest.raises(ValueError, match="one per target"):
        invert(enc, h, "adam", iterations=1, start=torch.zeros(3, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="target has shape"):
        invert(enc, h[:, :5], "adam", iterations=1, image_size=SIZE)


def test_encoder_runs_in_eval_mode_and_is_restored():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(1))
    net.train()
    seen = []
    net[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
    x = torch.rand(2, 3, 6, 6) * 2 - 1
    with eval_mode(net), torch.no_grad():
        h = net(x)
    invert(net, h, "adam", iterations=3, image_size=6)
    assert seen and not any(seen)                    # BatchNorm used its running statistics
    assert net.training and net[1].training          # and the caller's mode came back


def test_representation_distance():
    h = torch.tensor([[3.0, 4.0]])
    assert float(representation_distance(h, h, "l2")) == 0
    assert float(representation_distance(2 * h, h, "cosine")) == pytest.approx(0, abs=1e-7)
    assert float(representation_distance(2 * h, h, "l2")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expected one of"):
        representation_distance(h, h, "l1")


@pytest.mark.parametrize("layer", ["backbone", "head"])
def test_jacobian_rows_match_central_finite_differences(layer):
    enc = small_encoder(layer, width=4, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1)
    with torch.no_grad():
        dims = top_dims(enc(x[None]), 3)                                    # active dimensions (ReLU)
    rows = jacobian_rows(enc, x, dims)                                      # [3, 3, 8, 8]
    assert rows.shape == (3, 3, 8, 8) and rows.dtype == torch.float64
    eps = 1e-6
    fd = torch.zeros_like(rows)
    with torch.no_grad():
        for j in range(x.numel()):
            e = torch.zeros(x.numel(), dtype=torch.float64)
            e[j] = eps
            e = e.view_as(x)
            diff = (enc((x + e)[None]) - enc((x - e)[None]))[0, dims] / (2 * eps)
            fd.view(3, -1)[:, j] = diff
    assert fd.abs().max() > 1e-3                      # the check is not vacuous
    assert torch.allclose(rows, fd, atol=1e-7, rtol=1e-5), (rows - fd).abs().max()
    # the same as torch.autograd.functional.jacobian
    full = torch.autograd.functional.jacobian(lambda im: enc(im[None])[0], x)   # [D, 3, 8, 8]
    assert torch.allclose(rows, full[dims], atol=1e-12)


def test_jacobian_helpers():
    rows = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    s = normalise_rows(rows)
    assert s.abs().amax(dim=(1, 2, 3)).allclose(torch.ones(2))
    assert torch.equal(torch.sign(s), torch.sign(rows.float()))
    m = normalise_rows(rows, "magnitude")
    assert m.shape == rows.shape and m.min() >= -1 and m.max() == 1
    with pytest.raises(ValueError, match="expected one of"):
        normalise_rows(rows, "abs")
    assert top_dims(torch.tensor([0.1, -3.0, 2.0, 0.0]), 2) == [1, 2]
    enc = small_encoder()
    with pytest.raises(ValueError, match=r"dims must lie in \[0, 32\)"):
        jacobian_rows(enc, torch.zeros(3, SIZE, SIZE), [32])
    with pytest.raises(ValueError, match="one image"):
        jacobian_rows(enc, torch.zeros(2, 3, SIZE, SIZE), [0])
