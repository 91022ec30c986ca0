import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--runslow") or os.environ.get("RCDM_SLOW") == "1"
    skip_slow = pytest.mark.skip(reason="slow: opt in with --runslow or RCDM_SLOW=1")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)


@pytest.fixture
def official_fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def random_unet():
    """Factory: a small UNet with every weight random (the zero-initialised output layers of a
    fresh UNet would make the conditioning invisible)."""
    import torch

    from rcdm_lib.unet import UNet, UNetConfig

    def make(rep_dim=5, image_size=8, **kw):
        torch.manual_seed(0)
        cfg = dict(image_size=image_size, model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                   attention_resolutions=(image_size // 2,), rep_dim=rep_dim)
        model = UNet(UNetConfig(**{**cfg, **kw})).eval()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.05)
        return model

    return make
