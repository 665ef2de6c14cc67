"""Git as a source: the object database, commit ranges and the index."""
