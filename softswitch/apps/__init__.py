"""Call applications: features that run on an answered, anchored call (conference, monitor)."""
