import sys

from riskwatch.cli import main

sys.exit(main())
