"""The core every room may import (typed config loading, fingerprints, file contracts); it imports no room."""
