import sys

from loyalty_admin.cli import main

sys.exit(main())
