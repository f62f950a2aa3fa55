import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a slower test (still runs by default)")
