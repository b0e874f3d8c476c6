"""Core helpers with no knowledge of DAGs or the database."""
