"""``python -m llmcassette``: the same command line as the ``llmcassette`` script."""

from .cli import main

if __name__ == "__main__":
    main()
