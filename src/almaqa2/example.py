"""``python -m almaqa2.example LISTING DEST [PROJECT]``: build an example reduction (see
``almaqa2.testing.reductions``, where the builder lives)."""

import sys

from almaqa2.testing.reductions import main

if __name__ == "__main__":
    sys.exit(main())
