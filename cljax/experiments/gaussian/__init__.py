"""The gaussian experiment (`cljax gaussian`)."""
