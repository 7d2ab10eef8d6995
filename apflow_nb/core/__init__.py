"""The orchestration core: no IPython, ipywidgets or pandas here."""
