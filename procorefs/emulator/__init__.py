"""A local Procore-compatible server: the demo backend and the tests' ground truth."""
