"""The core every room may import; it imports no room. Each contract the rooms share lives here once.

- `configio`: typed config loading and fingerprints.
- `chat`: Gemma's special pieces and ids, the chat template and the generation prompt.
- `shard_format`: the packed-shard format's name, version, columns and the manifest parser.
- `domains`: the document domains (web, code, math).
"""
