"""``python -m optimas_lg.cli.main``: the same as the ``optimas-lg`` script."""

from optimas_lg.cli import app

if __name__ == "__main__":
    app()
