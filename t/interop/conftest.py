"""
conftest - the interop tests (t/interop, `make interop`) use the fixtures,
time limits and failure reports of the integration tests: this loads
t/integration/conftest.py under its own name and takes its hooks and
fixtures over, so there is one copy of them.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
sys.path.insert(0, INTEGRATION)

_spec = importlib.util.spec_from_file_location(
    "herald_integration_conftest", os.path.join(INTEGRATION, "conftest.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
globals().update({k: v for k, v in vars(_base).items()
                  if not k.startswith("__")})
