import sys

from partner_endpoint.cli import main

sys.exit(main())
