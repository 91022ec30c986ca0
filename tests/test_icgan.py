"""IC-GAN: shapes, hinge loss and projection discriminator by hand, spectral norm, k-NN
neighbourhoods by brute force, k-means instances, exact resume, the official key layout, and
a short training whose samples land nearer their own conditioning than a random one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rcdm_lib.icgan import (OFFICIAL_ICGAN_128, Discriminator, Generator, ICGANConfig, ICGANTrainConfig,
                            KMeansInstanceSampler, NeighbourhoodIndex, hinge_d_loss, hinge_g_loss, load_icgan,
                            load_official_generator, sample_icgan, save_icgan, train_icgan)
from rcdm_lib.icgan.official import config_from_state_dict

REPO = Path(__file__).resolve().parent.parent
SMALL = dict(image_size=8, rep_dim=6, dim_z=8, shared_dim_feat=8, g_ch=8, g_ch_mult=(2, 1), d_ch=8, d_ch_mult=(1, 2))


def small(**kw) -> ICGANConfig:
    return ICGANConfig(**{**SMALL, **kw})


@pytest.mark.parametrize("kw", [{}, dict(image_size=16, g_ch_mult=(4, 2, 1), d_ch_mult=(1, 2, 4), dim_z=12,
                                         g_attention=(8,), d_attention=(8,), hier=True),
                                dict(hier=False)])
def test_generator_and_discriminator_shapes(kw):
    torch.manual_seed(0)
    cfg = small(**kw)
    G, D = Generator(cfg), Discriminator(cfg)
    z, h = torch.randn(5, cfg.dim_z), torch.randn(5, cfg.rep_dim)
    x = G(z, h)
    assert x.shape == (5, 3, cfg.image_size, cfg.image_size) and x.abs().max() <= 1
    assert D(x, h).shape == (5,)
    s = sample_icgan(G.eval(), h[:2], n_per=3, seed=0)
    assert s.shape == (2, 3, 3, cfg.image_size, cfg.image_size)
    assert torch.equal(s, sample_icgan(G, h[:2], n_per=3, seed=0))        # seeded


def test_shape_errors_say_what_was_expected():
    G = Generator(small())
    with pytest.raises(ValueError, match=r"h must be \[N, 6\], got \[2, 5\]"):
        G(torch.randn(2, 8), torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"z must be \[N, 8\]"):
        G(torch.randn(2, 7), torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"images must be \[N, 3, 8, 8\], got \[2, 3, 4, 4\]"):
        Discriminator(small())(torch.randn(2, 3, 4, 4), torch.randn(2, 6))
    with pytest.raises(ValueError, match="image_size is 16; use 3 multipliers"):
        small(image_size=16)
    with pytest.raises(ValueError, match="dim_z=7 is not divisible"):
        small(dim_z=7)


def test_hinge_losses_by_hand():
    d_real = torch.tensor([2.0, 0.5, -1.0])          # max(0, 1 - d): 0, 0.5, 2
    d_fake = torch.tensor([-2.0, 0.25, 1.0])         # max(0, 1 + d): 0, 1.25, 2
    real, fake = hinge_d_loss(d_real, d_fake)
    assert real.item() == pytest.approx(2.5 / 3)
    assert fake.item() == pytest.approx(3.25 / 3)
    assert hinge_g_loss(d_fake).item() == pytest.approx(0.25)   # -(-2 + 0.25 + 1) / 3
    # a confident, correct discriminator pays nothing
    assert sum(hinge_d_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -5.0]))).item() == 0.0


def _sn_by_hand(layer) -> torch.Tensor:
    """BigGAN's one power iteration from the stored u, written out."""
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
    v = F.normalize(layer.u0 @ w, dim=1)
    u = F.normalize(v @ w.t(), dim=1)
    return layer.weight.detach() / (v @ w.t() @ u.t()).squeeze()


def test_projection_discriminator_equals_hand_computation():
    torch.manual_seed(0)
    D = Discriminator(small()).eval()
    x, h = torch.randn(4, 3, 8, 8), torch.randn(4, 6)
    phi = x
    for blocklist in D.blocks:
        for block in blocklist:
            phi = block(phi)
    phi = phi.relu().sum(dim=(2, 3))                                   # [N, C]: sum pooling of ReLU features
    h_n = h / h.norm(dim=1, keepdim=True)                              # IC-GAN normalises h
    psi = phi @ _sn_by_hand(D.linear).t() + D.linear.bias              # [N, 1]
    embed = h_n @ _sn_by_hand(D.linear_feat).t() + D.linear_feat.bias  # [N, C]
    want = psi[:, 0] + (embed * phi).sum(1)
    torch.testing.assert_close(D(x, h), want, rtol=1e-5, atol=1e-5)
    # h enters only through the projection: D(x, h1) - D(x, h2) = <embed(h1) - embed(h2), phi(x)>
    h2 = torch.randn(4, 6)
    embed2 = F.normalize(h2, dim=1) @ _sn_by_hand(D.linear_feat).t() + D.linear_feat.bias
    torch.testing.assert_close(D(x, h) - D(x, h2), ((embed - embed2) * phi).sum(1), rtol=1e-4, atol=1e-4)


def test_spectral_norm_converges_to_unit_top_singular_value():
    from rcdm_lib.icgan.layers import SNConv2d

    torch.manual_seed(0)
    conv = SNConv2d(4, 6)
    for _ in range(50):                    # training-mode forwards run the power iteration
        conv(torch.randn(1, 4, 5, 5))
    w = conv.eval().sn_weight().reshape(6, -1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=1e-3)
    sigma = torch.linalg.matrix_norm(conv.weight.detach().reshape(6, -1), ord=2).item()
    assert conv.sv0.item() == pytest.approx(sigma, rel=1e-3)


def test_neighbourhood_index_matches_brute_force_and_samples_only_neighbours():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(120, 7, generator=g) * torch.rand(120, 1, generator=g)    # norms vary: normalised first
    k = 6
    index = NeighbourhoodIndex(feats, k, chunk=32)                                 # several chunks
    f = feats / feats.norm(dim=1, keepdim=True)
    for i in range(len(feats)):                                                    # brute force, one by one
        d = [((f[i] - f[j]) ** 2).sum().item() if j != i else float("inf") for j in range(len(feats))]
        want = sorted(range(len(feats)), key=lambda j: d[j])[:k]
        assert index.neighbours[i].tolist() == want
        assert index.distances[i].tolist() == pytest.approx([d[j] for j in want], abs=1e-5)
    inst = torch.randint(len(feats), (20000,), generator=g)
    drawn = index.sample(inst, g)
    for i, j in zip(inst.tolist(), drawn.tolist()):
        assert j != i and j in index.neighbours[i].tolist()
    counts = torch.bincount(drawn[inst == 3], minlength=len(feats))[index.neighbours[3]]
    assert (counts > 0).all() and counts.min() > 0.5 * counts.float().mean()     # uniform over the k
    with pytest.raises(ValueError, match="k_nn must be between 1 and N - 1 = 119"):
        NeighbourhoodIndex(feats, 120)


def test_kmeans_instances_are_training_points_near_each_cluster():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    reps = torch.cat([c + 0.3 * torch.randn(50, 3, generator=g) for c in centres])   # 3 directions
    sampler = KMeansInstanceSampler(reps, n_clusters=3, seed=0)
    assert sorted((sampler.instances // 50).tolist()) == [0, 1, 2]               # one instance per blob
    h = sampler.sample(40, generator=g)
    assert all(any(torch.equal(r, reps[i]) for i in sampler.instances.tolist()) for r in h)


def _toy(n=64, size=8, rep_dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.randn(n, rep_dim, generator=g)


def test_resume_continues_exactly_and_refuses_another_config(tmp_path):
    images, feats = _toy()
    tc = ICGANTrainConfig(steps=4, batch_size=8, k_nn=3, ckpt_every=2, log_every=1, standing_batches=2)
    ref = train_icgan(small(), tc, images, feats, run_dir=tmp_path / "ref", progress=False)
    train_icgan(small(), tc, images, feats, run_dir=tmp_path / "cut", progress=False, stop_after=2)
    res = train_icgan(small(), tc, images, feats, run_dir=tmp_path / "cut", progress=False, resume=True)
    assert res.step == 4
    for k, v in ref.G_ema.state_dict().items():
        assert torch.equal(v, res.G_ema.state_dict()[k]), k
    for k, v in ref.D.state_dict().items():
        assert torch.equal(v, res.D.state_dict()[k]), k
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="k_nn: checkpoint has 3, this run has 4"):
        train_icgan(small(), ICGANTrainConfig(**{**tc.to_dict(), "k_nn": 4}), images, feats,
                    run_dir=tmp_path / "cut", progress=False, resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train_icgan(small(), tc, images, feats, run_dir=tmp_path / "ref", progress=False)


def test_save_and_load_give_the_same_samples(tmp_path):
    images, feats = _toy()
    res = train_icgan(small(), ICGANTrainConfig(steps=2, batch_size=8, k_nn=3, standing_batches=2), images, feats,
                      progress=False)
    path = save_icgan(tmp_path / "g.safetensors", res.G_ema, extra={"slot": "toy"})
    G = load_icgan(path)
    assert G.config == res.G_ema.config and not G.training
    torch.testing.assert_close(sample_icgan(G, feats[:3], 2), sample_icgan(res.G_ema, feats[:3], 2))
    with pytest.raises(FileNotFoundError, match="train_icgan.py"):
        load_icgan(tmp_path / "missing.safetensors")


# Module names of BigGAN-PyTorch's Generator (BigGAN.py, layers.py) in facebookresearch/ic_gan:
# SN layers keep `u0`/`sv0`, ccbn's gain/bias are bias-free SNLinear (G_shared), the unused class
# embedding `shared` stays, attention at 64px is the second module of block 3.
OFFICIAL_KEYS = {
    "shared.weight": [1000, 128], "shared_feat.weight": [512, 2048], "shared_feat.u0": [1, 512],
    "shared_feat.sv0": [1], "linear.weight": [16 * 96 * 16, 20], "linear.bias": [16 * 96 * 16],
    "blocks.0.0.conv1.weight": [16 * 96, 16 * 96, 3, 3], "blocks.0.0.conv_sc.weight": [16 * 96, 16 * 96, 1, 1],
    "blocks.0.0.bn1.gain.weight": [16 * 96, 532], "blocks.0.0.bn1.bias.u0": [1, 16 * 96],
    "blocks.0.0.bn1.stored_mean": [16 * 96], "blocks.3.1.theta.weight": [24, 192, 1, 1], "blocks.3.1.gamma": [],
    "blocks.4.0.conv2.weight": [96, 96, 3, 3], "output_layer.0.gain": [96], "output_layer.0.stored_var": [96],
    "output_layer.2.weight": [3, 96, 3, 3], "output_layer.2.bias": [3],
}


def test_official_128_layout_and_config_inference():
    with torch.device("meta"):
        sd = Generator(OFFICIAL_ICGAN_128).state_dict()
    for k, shape in OFFICIAL_KEYS.items():
        assert list(sd[k].shape) == shape, k
    assert "blocks.0.0.bn1.gain.bias" not in sd and not any(k.startswith("blocks.2.1") for k in sd)
    assert config_from_state_dict(sd) == OFFICIAL_ICGAN_128


def test_official_loader_round_trip_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    cfg = ICGANConfig(image_size=16, rep_dim=32, dim_z=12, hier=True, shared_dim_feat=16, g_ch=8,
                      g_ch_mult=(4, 2, 1), g_attention=(8,), n_classes=10, shared_dim=8)
    G = Generator(cfg).eval()
    path = tmp_path / "G_ema_best0.pth"
    torch.save({f"module.{k}": v for k, v in G.state_dict().items()}, path)     # a DataParallel prefix too
    loaded = load_official_generator(path)
    assert loaded.config.g_ch_mult == cfg.g_ch_mult and loaded.config.g_attention == (8,)
    h = torch.randn(3, 32)
    torch.testing.assert_close(sample_icgan(loaded, h, 2), sample_icgan(G, h, 2))
    with pytest.raises(FileNotFoundError, match="icgan_biggan_imagenet_res128.tar.gz"):
        load_official_generator(tmp_path / "nope.pth")
    torch.save({"ssl_emb.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an IC-GAN BigGAN generator.*G_ema_best0.pth"):
        load_official_generator(tmp_path / "other.pt")
    sd = G.state_dict()
    sd["blocks.0.0.conv2.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="blocks.0.0.conv2.weight: file \\[1\\]"):
        load_official_generator(tmp_path / "broken.pth")


def test_samples_are_nearer_their_own_conditioning_than_a_random_one():
    """After a short training, samples re-encoded are closer to the representation that
    conditioned them than to another instance's, far more often than the 50% of chance.

    The problem: built-in images at 8px, the representation their 2x2 colour layout (12-d).
    An untrained generator scores 0.5 by symmetry; 800 steps reach 0.73-0.81 over seeds."""
    from rcdm_lib.data import FactorShapes

    torch.set_num_threads(1)
    encode = lambda im: F.avg_pool2d(im, 4).flatten(1)                      # noqa: E731  [N, 12]
    x = F.avg_pool2d(FactorShapes("train", size=16, length=1024, seed=0).batch(list(range(1024)))[0], 2)
    cfg = ICGANConfig(image_size=8, rep_dim=12, dim_z=16, shared_dim_feat=16, g_ch=16, g_ch_mult=(2, 1), d_ch=16,
                      d_ch_mult=(1, 2))
    tc = ICGANTrainConfig(steps=800, batch_size=64, k_nn=5, g_lr=1e-3, d_lr=1e-3, ema_rate=0.99, standing_batches=8,
                          seed=0)
    res = train_icgan(cfg, tc, x, encode(x), progress=False)
    test = F.avg_pool2d(FactorShapes("test", size=16, length=256, seed=0).batch(list(range(256)))[0], 2)
    h = encode(test)                                                         # held-out conditioning
    hs = encode(sample_icgan(res.G_ema, h, n_per=1, seed=1)[:, 0])
    own = ((hs - h) ** 2).sum(1)
    other = ((hs - h.roll(1, 0)) ** 2).sum(1)                               # another instance's representation
    frac = (own < other).float().mean().item()
    # chance: 0.5 with std 0.031 over 256 pairs; 0.65 is 4.8 standard deviations above it
    assert frac > 0.65, f"only {frac:.2f} of the samples are nearer their own conditioning"


def test_train_script_writes_artifact_and_manifest(tmp_path, smoke_models):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out, export = tmp_path / "run", tmp_path / "ic" / "icgan.safetensors"
    subprocess.run([sys.executable, str(REPO / "scripts" / "train_icgan.py"), "--profile", "smoke", "--steps", "3",
                    "--threads", "1", "--out", str(out), "--export", str(export), "--no-progress"],
                   env=env, check=True, capture_output=True, timeout=300)
    entry = json.loads((export.parent / "manifest.json").read_text())["icgan"]
    from rcdm_lib.artifacts import file_sha256

    assert entry["sha256"] == file_sha256(export) and entry["steps"] == 3 and entry["slot"] == "simclr_backbone"
    assert "train_icgan.py --profile smoke" in entry["command"]
    assert (export.parent / "samples.png").is_file()
    G = load_icgan(export)
    assert G.config.image_size == 8 and G.config.rep_dim > 0


def test_pipeline_hashes_the_icgan_into_the_notebook_cache_key():
    from rcdm_lib import pipeline
    from rcdm_lib.config import load_profile

    for name in ("smoke", "tiny"):
        assert REPO / load_profile(name)["icgan"]["export"] in pipeline.input_files(name)
