"""What can be wrong with an index, as exceptions whose message tells a person how to fix it."""


class IndexProblem(Exception):
    """Base class for index problems the caller should show to a person."""


class IndexMismatchError(IndexProblem):
    """The saved index was built with another ranking or embedding model than the one configured."""


class IndexMissingError(IndexProblem):
    """No index at the expected place, or it cannot be read."""
