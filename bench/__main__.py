"""`python -m bench`: run every phase in one go and write the table."""

from bench.main import main

raise SystemExit(main())
