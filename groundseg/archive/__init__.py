"""groundseg.archive layer."""
