"""`python -m navctl ...` is the `navctl` command."""
import sys

from navctl.cli import main

if __name__ == "__main__":
    sys.exit(main())
