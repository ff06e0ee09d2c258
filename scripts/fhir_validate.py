"""Validates FHIR R4 Bundles (JSON files named on the command line) with fhir.resources: the
Bundle, and every entry again as its own resource type. Prints each error; exits 1 on any."""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__
failed = False
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        construct_fhir_element("Bundle", data)
        for i, entry in enumerate(data.get("entry", [])):
            res = entry["resource"]
            construct_fhir_element(res["resourceType"], res)
    except Exception as e:  # pydantic.ValidationError and KeyError alike
        failed = True
        print(f"{path}: {e}", file=sys.stderr)
    else:
        print(f"{path}: valid FHIR {fhir.resources.__fhir_version__} Bundle, {len(data.get('entry', []))} entries")
sys.exit(1 if failed else 0)
