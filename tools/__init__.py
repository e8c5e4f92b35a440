"""Research harnesses run by the Makefile (`make bench`, `make box-gap`, `make aligner-weights`): not part of
the library, each a command with --help."""
