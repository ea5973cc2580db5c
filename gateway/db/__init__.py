"""Database: models, engine set-up per dialect, schema migrations, the thread pool."""
