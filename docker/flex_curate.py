"""The flex template's program: `gemmaflow curate` on Dataflow.

The launcher runs this file with the template's parameters and Dataflow's options, all as
`--name=value` (docker/curate-flex-template-metadata.json lists the parameters). Dataflow is the
default runner here; a `--runner` the launcher passes comes later and wins.
"""

import sys

from gemmaflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["curate", "--quiet", "--runner=DataflowRunner", *sys.argv[1:]]))
