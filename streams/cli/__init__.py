"""The `spma` command line: the composition root, which imports everything and nothing imports."""
