"""datatrove's side of benchmarks/crawl_extract.py: WarcReader -> Trafilatura on the given WARC files.

Runs in datatrove's own environment (benchmarks/datatrove_env.py) and imports nothing from
gemmaflow. The steps chain as generators in one process, `step.run(docs, rank=0, world_size=1)`,
datatrove's own per-document path without its executor. Trafilatura runs as datatrove configures
it by default (favour precision, 1 s timeout per page) inside datatrove's extraction sandbox, a
child process, so the CPU time counted is this process's plus its finished children's. Prints one
JSON line: pages in (records the reader turned into documents), pages out, CPU seconds.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(paths: list[str]) -> None:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    start = cpu_seconds()
    pages_in = pages_out = 0
    for path in paths:
        reader = WarcReader(str(Path(path).parent), glob_pattern=Path(path).name, recursive=False)
        extractor = Trafilatura(favour_precision=True)

        def counted(docs):
            nonlocal pages_in
            for doc in docs:
                pages_in += 1
                yield doc

        for _ in extractor.run(counted(reader.run(None, rank=0, world_size=1)), rank=0, world_size=1):
            pages_out += 1
    seconds = cpu_seconds() - start
    print(json.dumps({"pages_in": pages_in, "pages_out": pages_out, "cpu_s": seconds,
                      "pages_per_cpu_s": pages_in / seconds}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
