"""medcard: open-source electronic medical card platform."""

__version__ = "0.1.0"
