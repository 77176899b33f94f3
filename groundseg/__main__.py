import sys

from groundseg.cli import main

sys.exit(main())
