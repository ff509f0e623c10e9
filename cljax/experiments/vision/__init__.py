"""The vision experiment (`cljax vision`)."""
