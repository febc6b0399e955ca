"""The experiments layer: specs as data, sweep expansion, the runner and the results store."""
