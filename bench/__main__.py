"""`python -m bench`: the operator bench suite (bench/suite.py)."""

import sys

from bench.suite import main

main(sys.argv[1:])
