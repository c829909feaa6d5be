"""The read side beside the store: read models and their runner, the workers and the parallel rebuild that keep
them, the place names."""
