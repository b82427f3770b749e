import sys

from convassist_agent.cli import main

sys.exit(main())
