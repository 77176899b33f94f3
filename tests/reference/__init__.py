"""Slow, obviously-correct reference implementations the kernels are checked against."""
