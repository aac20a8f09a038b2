import sys

from stella_orchestrator.cli import main

sys.exit(main())
