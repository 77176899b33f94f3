"""Slow, obviously-correct pure-Python references the kernels are tested against."""
