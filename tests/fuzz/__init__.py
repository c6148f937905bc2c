"""Fuzzing targets for the hostile-input parsers (hypothesis in `make test`, atheris longer)."""
