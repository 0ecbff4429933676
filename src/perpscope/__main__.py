"""``python -m perpscope``: the same as the ``perpscope`` command."""

from perpscope.cli.entry import main

if __name__ == "__main__":
    main()
