"""``python -m perpscope``: the same as the ``perpscope`` command."""

from perpscope.cli.main import run

if __name__ == "__main__":
    run()
