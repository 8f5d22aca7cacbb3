import sys

from pruneprobe.cli.app import main

sys.exit(main())
