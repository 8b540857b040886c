#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Validates a YNL spec against one of the kernel's netlink schemas
# (Documentation/netlink/genetlink.yaml) with the tools the kernel's own YNL
# library uses: PyYAML's safe_load and python3-jsonschema. Prints one JSON
# line per error, {"validator", "pointer", "keyword", "message"}, and nothing
# when the spec is valid; exits 0 either way (2 when it cannot run).
#
# Two validators judge the spec: Draft7Validator, since the schema says it
# is draft-07, and the class jsonschema.validate() picks for the schema, which
# is what the kernel's YNL library (nlspec.py) calls when it loads a spec. The
# schema names its draft as https://json-schema.org/draft-07/schema, which
# jsonschema does not recognise, so that class is jsonschema's newest draft.
# An error both report is printed once.
#
# Usage: kernel_schema_check.py SCHEMA SPEC
import json
import sys
import warnings


def pointer(path):
    return ''.join('/' + str(p).replace('~', '~0').replace('/', '~1') for p in path)


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: kernel_schema_check.py SCHEMA SPEC')
    try:
        import jsonschema
        import yaml
    except ImportError as e:
        print(f'kernel_schema_check.py: {e} (tools/setup/system-deps.sh installs python3-jsonschema '
              'and python3-yaml)', file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1], encoding='utf-8') as f:
        schema = yaml.safe_load(f)
    with open(sys.argv[2], encoding='utf-8') as f:
        spec = yaml.safe_load(f)

    with warnings.catch_warnings():
        # "The metaschema specified by $schema was not found": the fallback is the point.
        warnings.simplefilter('ignore', DeprecationWarning)
        picked = jsonschema.validators.validator_for(schema)
    classes = [jsonschema.Draft7Validator]
    if picked is not jsonschema.Draft7Validator:
        classes.append(picked)

    seen = set()
    for cls in classes:
        cls.check_schema(schema)
        for error in sorted(cls(schema).iter_errors(spec), key=lambda e: list(map(str, e.absolute_path))):
            where = pointer(error.absolute_path)
            key = (where, error.validator, error.message)
            if key in seen:
                continue
            seen.add(key)
            print(json.dumps({'validator': cls.__name__, 'pointer': where, 'keyword': error.validator,
                              'message': error.message}))


if __name__ == '__main__':
    main()
