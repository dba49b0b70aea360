"""The flex template's program: `gemmaflow curate` on Dataflow.

The launcher runs this file with the template's parameters and Dataflow's options, all as
`--name=value` (docker/curate-flex-template-metadata.json lists the parameters). Dataflow is the
default runner here; a `--runner` the launcher passes comes later and wins. `--submit-only` makes
the program exit once the job is submitted, as the launcher expects; the job itself writes
stats.json and the completion marker in its last step.
"""

import sys

from gemmaflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["curate", "--quiet", "--submit-only", "--runner=DataflowRunner", *sys.argv[1:]]))
