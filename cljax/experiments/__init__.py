"""The paper's experiments, as users of the library: each subpackage holds its data, model,
study, figures and CLI.  The core (``cljax.projection``, ``cljax.solvers``, ...) never imports
from here."""
