"""The compare experiment (`cljax compare`)."""
