"""``python -m pipeline …`` is ``kiemke …``."""

from .cli import main

main()
