"""Markers of the Slurm tests (to move to the root configuration)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: needs a real Slurm (see .ci/slurm/up)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
