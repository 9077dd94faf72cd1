"""Interoperability with other quantum-ML packages (dwave-pytorch-plugin)."""
