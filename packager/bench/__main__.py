"""`python -m packager.bench` prints the JSON Schema of a benchmark record (schema.SCHEMA)."""

import json

from packager.bench.schema import json_schema

print(json.dumps(json_schema(), indent=2))
