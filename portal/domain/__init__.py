"""Plain domain functions over a SQLAlchemy Session; no Flask here."""
