"""`python -m crm.cli`: the same command as `crm`."""

from crm.cli import main

main()
