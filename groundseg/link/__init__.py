"""groundseg.link layer."""
