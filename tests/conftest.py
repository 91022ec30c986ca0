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


def pytest_configure(config):
    """Under pytest-xdist (make test: -n auto) each worker keeps to its share of the CPU threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)   # the scripts and notebook kernels the tests start


def shared_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session sees (the session's own base folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def smoke_models(tmp_path_factory):
    """The smoke profile's models, trained once when missing (seconds), one worker at a time."""
    from filelock import FileLock

    from rcdm_lib import pipeline

    with FileLock(str(shared_dir(tmp_path_factory) / "smoke_models.lock")):
        pipeline.ensure_models("smoke", log=lambda s: None)


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
