"""``python -m fedrec`` is the ``fedrec`` command."""

from fedrec.cli.main import main

main()
