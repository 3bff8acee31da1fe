"""Fixtures shared by the integration tests.

One stack per test session (each meson test runs one test file, so one
session): `tests/stack.sh up` into a temporary directory at the start,
`down` at the end. A test that needs to stop or break its daemon makes its
own stack (see `fresh_stack`). On failure the daemon's log tail is attached
to the report.

CK_BUILD (set by meson) selects the build whose chakongd is tested;
CK_KEEP=1 keeps the temporary directories for inspection.
"""

import os
import shutil

import pytest

import ck

_stacks = []          # every stack made in this session, for failure reports


def _rmtree(path):
    if os.environ.get("CK_KEEP") == "1":
        print(f"(kept {path})")
        return
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pb():
    """The Python messages and stubs generated from proto/ for this run."""
    out = ck.mkdtemp("ck-pb-")
    try:
        yield ck.generate_messages(out)
    finally:
        _rmtree(out)


def _up(prefix, env=None):
    d = ck.mkdtemp(prefix)
    try:
        s = ck.Stack.up(d, env=env)
    except Exception as e:
        _rmtree(d)
        pytest.fail(str(e), pytrace=False)
    _stacks.append(s)
    return s


def _down(s):
    r = s.down()
    if r.returncode != 0:
        print(f"stack down failed: {r.stdout}{r.stderr}")


@pytest.fixture(scope="session")
def stack():
    s = _up("ck-it-")
    try:
        yield s
    finally:
        _down(s)
        _rmtree(s.dir)


class _Maker:
    """Makes stacks with environment overrides for tests/stack.sh (such as
    CK_LIMITS) and takes them all down at the end of its scope."""

    def __init__(self):
        self.made = []

    def __call__(self, **env):
        s = _up("ck-it-own-", env={k: str(v) for k, v in env.items()})
        self.made.append(s)
        return s

    def close(self):
        for s in self.made:
            _down(s)
            _rmtree(s.dir)


@pytest.fixture
def fresh_stack():
    """A stack of the test's own, for tests that stop or break the daemon."""
    m = _Maker()
    yield m
    m.close()


@pytest.fixture(scope="module")
def module_stack():
    """Stacks shared by one module's tests (e.g. with small limits)."""
    m = _Maker()
    yield m
    m.close()


@pytest.fixture(scope="session")
def channel(stack):
    ch = stack.channel()
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def broker(pb, channel):
    return pb.broker_grpc.AssetBrokerStub(channel)


@pytest.fixture(scope="session")
def health(pb, channel):
    return pb.health_grpc.HealthStub(channel)


@pytest.fixture(scope="session")
def testing(pb, channel):
    return pb.testing_grpc.TestingStub(channel)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _stacks:
        for s in [s for s in _stacks if os.path.exists(s.log)][-2:]:
            rep.sections.append((f"chakongd log tail ({s.log})",
                                 ck.log_tail(s.log)))
