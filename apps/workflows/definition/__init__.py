"""The workflow definition: JSON Schema, references (JSONPath and templates),
conditions, the validator and the compiler. Plain Python: no models, no views.
"""
