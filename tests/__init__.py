"""The test suite, one package per layer of the library (see CONTRIBUTING.md)."""
