"""rdmbench: a benchmark suite for retrieval-augmented image generation.

Blattmann et al., "Semi-Parametric Neural Image Synthesis", NeurIPS 2022 (arXiv 2204.11824).
Importing this package stays light: torch and friends load only when a stage needs them.
"""

__version__ = "0.1.0"
