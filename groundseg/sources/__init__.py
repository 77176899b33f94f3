"""groundseg.sources layer."""
