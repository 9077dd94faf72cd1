"""The command line's commands, one module per group of commands (``qbm train vae``,
``generate``, ``compare vae``; ``train qgan``, ``study capacity``; ``qpu``): argument
parsing, printing and exit codes on top of everything they use; :mod:`qbm.cli` assembles
them. Nothing below the command line imports these."""
