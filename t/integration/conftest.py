"""
conftest - fixtures for the integration tests.

  pki          session: test CA + server certificate (openssl CLI)
  herald       module: a running instance with domain example.test, users
               alice bob carol dave, alias team -> alice bob, postmaster ->
               alice, and domain catch.test whose catch-all goes to carol
  make_herald  function: factory for dedicated instances (tests that kill
               or reconfigure things); each is stopped after the test

Every test has a time limit (HERALD_TEST_TIMEOUT seconds, default 300,
enforced with SIGALRM in each phase). On failure the log of every herald
instance involved is attached to the report. A sanitizer report in a log
fails the test that owned the instance.
"""
import contextlib
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herald as H  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("HERALD_TEST_TIMEOUT", "300"))


def pytest_report_header(config):
    return ["herald binaries: %s (%s)" % (
        H.HERALD_BIN, "present" if H.have_binaries() else "MISSING"),
        "per-test timeout: %ds" % TEST_TIMEOUT]


def _sigterm(signum, frame):
    # run the finalizers (which stop every instance) as on Ctrl-C
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _sigterm)
    config.addinivalue_line(
        "markers", "time_limit(seconds): a longer per-test time limit")


def pytest_unconfigure(config):
    # last resort: nothing of any instance survives the session
    for inst in H.INSTANCES:
        try:
            inst.kill_leftovers()
        except Exception:
            pass


def pytest_collection_modifyitems(config, items):
    if H.have_binaries():
        return
    skip = pytest.mark.skip(reason="herald binaries not found in %s "
                            "(set HERALD_BIN)" % H.HERALD_BIN)
    for item in items:
        item.add_marker(skip)


# ---------------------------------------------------------------- timeouts


class _Timeout:
    def __init__(self, phase, seconds):
        self.phase = phase
        self.seconds = seconds

    def __call__(self, signum, frame):
        pytest.fail("test %s exceeded %ds (HERALD_TEST_TIMEOUT)"
                    % (self.phase, self.seconds), pytrace=True)


def _limit(item):
    """HERALD_TEST_TIMEOUT, or a longer bound a test asks for with
    @pytest.mark.time_limit(seconds) (building and installing the .deb
    twice takes most of 300 s on 2 busy cores)"""
    mark = item.get_closest_marker("time_limit")
    if mark is not None and mark.args:
        return max(TEST_TIMEOUT, int(mark.args[0]))
    return TEST_TIMEOUT


def _with_alarm(phase, item):
    seconds = _limit(item)
    old = signal.signal(signal.SIGALRM, _Timeout(phase, seconds))
    signal.alarm(seconds)
    return old


def _end_alarm(old):
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    item._herald_log_start = {id(i): i.log_size() for i in H.INSTANCES
                              if not i.stopped}
    item._herald_known = set(id(i) for i in H.INSTANCES)
    old = _with_alarm("setup", item)
    try:
        yield
    finally:
        _end_alarm(old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    old = _with_alarm("call", item)
    try:
        yield
    finally:
        _end_alarm(old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    old = _with_alarm("teardown", item)
    try:
        yield
    finally:
        _end_alarm(old)


# ---------------------------------------------------------------- log reports


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    starts = getattr(item, "_herald_log_start", {})
    known = getattr(item, "_herald_known", set())
    for inst in H.INSTANCES:
        new = id(inst) not in known
        if not new and id(inst) not in starts:
            continue	# stopped before this test began
        since = 0 if new else starts.get(id(inst), 0)
        text = inst.log_tail(400, since=since)
        rep.sections.append(("herald log %s (%s)" % (inst.dir, call.when),
                             text or "(empty)"))


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return H.make_test_pki(tmp_path_factory.mktemp("pki"))


def _finish(inst):
    """Stop inst; fail if it left processes or its log has sanitizer
    reports."""
    inst.stop()
    left = inst.our_pids()
    reports = inst.sanitizer_reports()
    if left:
        pytest.fail("processes outlived the instance: %s" % sorted(left))
    if reports:
        pytest.fail("sanitizer reports in %s: %s\n%s"
                    % (inst.log_path, reports, inst.log_tail(150)))


def setup_standard_directory(inst):
    inst.add_domain("example.test")
    for user in ("alice", "bob", "carol", "dave"):
        inst.add_user("%s@example.test" % user, "pw-" + user)
    inst.add_alias("team@example.test", "alice@example.test",
                   "bob@example.test")
    inst.add_alias("postmaster@example.test", "alice@example.test")
    inst.add_domain("catch.test")
    inst.add_alias("@catch.test", "carol@example.test")


@contextlib.contextmanager
def standard_instance(tmp_path_factory, pki, name, **overrides):
    """A started instance with the standard directory and the given
    settings, in a new folder called name; checked by _finish at the end.
    For module fixtures: `with standard_instance(...) as inst: yield inst`."""
    inst = H.HeraldInstance(tmp_path_factory.mktemp(name), pki=pki,
                            **overrides)
    try:
        setup_standard_directory(inst)
        inst.start()
        yield inst
    finally:
        _finish(inst)


@pytest.fixture(scope="module")
def herald(tmp_path_factory, pki):
    with standard_instance(tmp_path_factory, pki, "herald") as inst:
        yield inst


@pytest.fixture
def make_herald(tmp_path, pki):
    made = []

    def factory(start=True, standard=True, **overrides):
        inst = H.HeraldInstance(tmp_path / ("herald%d" % len(made)),
                                pki=pki, **overrides)
        made.append(inst)
        if standard:
            setup_standard_directory(inst)
        if start:
            inst.start()
        return inst
    try:
        yield factory
    finally:
        errors = []
        for inst in made:
            try:
                _finish(inst)
            except BaseException as e:	# pytest.fail is BaseException
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def token(request):
    """A unique token for this test's messages."""
    import uuid
    return "%s-%s" % (request.node.name.replace("[", "-").replace("]", "")
                      .replace("_", "-")[:40], uuid.uuid4().hex[:12])
