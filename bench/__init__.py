"""Operator benchmark scripts and the peer drivers they share with the tests."""
