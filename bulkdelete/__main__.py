import sys

from bulkdelete.cli import main

sys.exit(main())
