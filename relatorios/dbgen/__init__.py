"""The database generator behind `python popular_banco.py`: data/empresa.db, fast and seeded.

Needs only the standard library and Faker (Rich, when installed, draws the progress bar), so
the specification's quick start (`pip install faker && python popular_banco.py`) works.
"""

from relatorios.dbgen.build import generate
from relatorios.dbgen.cli import main

__all__ = ["generate", "main"]
