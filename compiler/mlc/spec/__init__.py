"""Stage 1 of the compiler: the mlproject.yaml language.

loader.py  YAML text -> plain tree + source spans (duplicate keys, hostile input rejected)
models.py  the typed Spec (pydantic, extra="forbid"); its JSON Schema is committed under schemas/
checks/    semantic checks across fields, one module per part of the spec
validate.py  ties them together: path -> Spec, or a SpecError listing every problem
schema.py  the JSON Schema editors use;  reference.py  the README's field reference (both generated)
"""
