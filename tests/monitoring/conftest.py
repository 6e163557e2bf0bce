"""The shared world of the region tests."""

from tests.regions.conftest import _fast_hashing, world

__all__ = ["_fast_hashing", "world"]
