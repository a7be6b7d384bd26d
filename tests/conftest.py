"""Shared fixtures: every kernel test runs on every ISA path this machine
supports and at 1 and 2 threads. Tests that set a thread count test the work
partition of that many threads, so teams take it even where the process has
fewer CPUs (oversubscription allowed for the whole session; the tests of the
CPU cap turn it off where they check it)."""
import numpy as np
import pytest

import cnnc

AVAILABLE_ISAS = cnnc.available_isas()


@pytest.fixture(autouse=True, scope="session")
def teams_of_the_size_asked():
    previous = cnnc.get_oversubscription()
    cnnc.set_oversubscription(True)
    yield
    cnnc.set_oversubscription(previous)


@pytest.fixture(params=AVAILABLE_ISAS)
def isa(request):
    """Run the test with this ISA path forced, restoring the default after."""
    previous = cnnc.isa()
    cnnc.set_isa(request.param)
    yield request.param
    cnnc.set_isa(previous)


@pytest.fixture(params=[1, 2])
def threads(request):
    previous = cnnc.get_num_threads()
    cnnc.set_num_threads(request.param)
    yield request.param
    cnnc.set_num_threads(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
