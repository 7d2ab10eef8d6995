"""``python -m apflow_nb``: the command line (``apflow-nb``)."""
from apflow_nb.cli import main

raise SystemExit(main())
