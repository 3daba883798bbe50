import sys

from elasticnas.cli import main

sys.exit(main())
