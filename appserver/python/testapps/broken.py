"""Fails to import, for the exit-code-3 tests."""
import this_module_does_not_exist_tandem  # noqa: F401
