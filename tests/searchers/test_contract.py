import pytest

from elasticnas import list_searchers
from elasticnas.testing.searchers import SearcherContract


@pytest.fixture(params=list_searchers())
def searcher_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestEveryRegisteredSearcher(SearcherContract):
    pass
