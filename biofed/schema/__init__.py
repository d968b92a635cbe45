"""The BioFed data standard: JSON Schemas (2020-12), code lists, validation.

    from biofed.schema import validate_record
    for issue in validate_record(record):
        print(issue.pointer, issue.rule, issue.message)
"""

from biofed.schema.codes import code_list, code_list_names, nuts_regions
from biofed.schema.documents import (
    RECORD_SCHEMAS,
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    schema_document,
    schema_documents,
    schema_file,
)
from biofed.schema.validate import ValidationIssue, profile_issues, validate_document, validate_record

__all__ = [
    "RECORD_SCHEMAS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "ValidationIssue",
    "code_list",
    "code_list_names",
    "nuts_regions",
    "profile_issues",
    "schema_document",
    "schema_documents",
    "schema_file",
    "validate_document",
    "validate_record",
]
