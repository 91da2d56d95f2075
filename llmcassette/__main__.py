"""``python -m llmcassette``: the same command line as the ``llmcassette`` script."""

from ._cli import main

if __name__ == "__main__":
    main()
