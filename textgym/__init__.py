"""textgym: text generation as Gymnasium environments, with pluggable reward functions."""

__version__ = "0.1.0"
