"""The shared world of the region tests."""

from tests.regions.conftest import world

__all__ = ["world"]
