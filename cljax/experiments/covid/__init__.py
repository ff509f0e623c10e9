"""The covid experiment (`cljax covid`)."""
