"""The notebook layer: magics, Run handles, live views. Consumes only the core's public API and events."""
