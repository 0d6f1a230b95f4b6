"""Generate data/empresa.db (the specification's entry point). See `python popular_banco.py -h`.

Needs only `pip install faker`: the generator imports nothing else from outside the standard
library (Rich is used for the progress bar when it is installed).
"""

from relatorios.dbgen import main

if __name__ == "__main__":
    raise SystemExit(main())
