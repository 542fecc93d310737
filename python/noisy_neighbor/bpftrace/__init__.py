"""bpftrace's language on the probe host: a script is parsed, checked against
the kernel's BTF, generated as C for the SDK, compiled by clang, and loaded
by the same host as every plugin; its maps and printf records come back as
numpy columns, pandas objects and bpftrace's own text and NDJSON.

Passes, one file each: :mod:`.preprocess` and :mod:`.lexer` ->
:mod:`.parser` (the syntax tree, :mod:`.ast`) -> the checker (types, map
kinds) -> the C generator -> clang -> the host -> the output formats.
"""
