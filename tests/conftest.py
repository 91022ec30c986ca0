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
