"""bf16 where it pays: the device rule, and bf16 training computing the fp32 function (CPU with AMX)."""
import pytest
import torch

from rcdm_lib import precision
from rcdm_lib.encoders.training import EncoderTrainConfig, train_tiny_encoder
from rcdm_lib.precision import cpu_has_fast_bf16, use_bf16

needs_bf16_cpu = pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no AMX/AVX512-BF16")


@pytest.mark.parametrize("fast", [False, True])
def test_cpu_bf16_only_where_the_cpu_has_bf16_hardware(monkeypatch, fast):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: fast)
    assert use_bf16("cpu", cpu=True) is fast
    assert use_bf16("cpu", cpu=False) is False
    assert use_bf16("cpu") is False           # the default: CPU trains in fp32
    assert use_bf16("cuda", cuda=True) is True
    assert use_bf16("cuda", cuda=False) is False
    assert use_bf16("meta", cuda=True, cpu=True) is False


@needs_bf16_cpu
@pytest.mark.parametrize("method", ["supervised", "simclr", "barlow", "vicreg", "dino"])
def test_bf16_encoder_training_starts_from_the_fp32_loss(method):
    """Same seed, same first batch: the step-0 loss in bf16 is the fp32 one to bf16 accuracy, and both learn."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(256, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    labels = torch.randint(0, 12, (256,), generator=g)
    runs = {}
    for bf16 in (False, True):
        cfg = EncoderTrainConfig(method=method, steps=11, batch_size=64, lr=2e-3, warmup_steps=2, cpu_bf16=bf16,
                                 model=dict(width=16, stem_stride=1))
        _, hist = train_tiny_encoder(images, labels, cfg, progress=False)
        assert hist["bf16"] is bf16
        runs[bf16] = hist["loss"]
    first32, first16 = runs[False][0], runs[True][0]
    assert abs(first16 - first32) <= 0.02 * abs(first32) + 1e-3, (first32, first16)
    assert all(torch.isfinite(torch.tensor(runs[True]))), runs[True]
