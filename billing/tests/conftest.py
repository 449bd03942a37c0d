"""The Microsoft emulator as a real HTTP server, shared with licensing's tests."""

from licensing.tests.conftest import emulator, emulator_server  # noqa: F401  (fixtures)
