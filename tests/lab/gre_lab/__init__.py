"""A lab of user-mode-linux guests with kernel GRE, for testing linuxnet.gre."""
