import pytest

from elasticnas.supernets import list_supernets
from elasticnas.testing.supernets import SupernetContract


@pytest.fixture(params=list_supernets())
def supernet_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestEveryRegisteredSupernet(SupernetContract):
    pass
