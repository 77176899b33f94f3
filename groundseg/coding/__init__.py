"""groundseg.coding layer."""
