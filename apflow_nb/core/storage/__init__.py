"""The task store: SQLAlchemy model, repository and sessions."""
