//! The extension schemas' attribute tables: the enterprise User extension (RFC 7643 §4.3,
//! §8.7.2) and Omni's two user extensions.

use super::build::{attr, complex, reference, string};
use super::{AttrType, SchemaDef};
use crate::scim::{ENTERPRISE_USER_SCHEMA, OMNI_USER_EXTENSION_SCHEMA, USER_ATTRIBUTE_SCHEMA};

/// RFC 7643 §4.3 / §8.7.2: the enterprise User extension.
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            "The User's manager.",
            &[
                string(
                    "value",
                    "The id of the SCIM resource representing the User's manager.",
                ),
                reference(
                    "$ref",
                    "The URI of the SCIM resource representing the User's manager.",
                    &["User"],
                ),
                // RFC 7643 §4.3: displayName of the manager is READ-ONLY.
                string("displayName", "The displayName of the User's manager.").read_only(),
            ],
        ),
    ],
};

/// Omni's user metadata extension; `lastLogin` is maintained by the server.
pub static OMNI_USER: SchemaDef = SchemaDef {
    id: OMNI_USER_EXTENSION_SCHEMA,
    name: "OmniUser",
    description: "Omni user metadata",
    attributes: &[attr(
        "lastLogin",
        AttrType::DateTime,
        "The time of the User's last successful login.",
    )
    .read_only()],
};

/// Omni's organisation-defined user attributes: keys are defined per organization at run
/// time, so the schema has no fixed attributes.
pub static USER_ATTRIBUTE: SchemaDef = SchemaDef {
    id: USER_ATTRIBUTE_SCHEMA,
    name: "UserAttribute",
    description: "Organization-defined user attributes",
    attributes: &[],
};
