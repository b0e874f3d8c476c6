"""What a DAG file builds: pure Python, no database."""
