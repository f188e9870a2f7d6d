//! The group-membership draft's schemas (draft-zollner-scim-group-membership): the
//! `GroupMember` resource, one membership with its own id, and the Group extension whose
//! `membersMetadata` tells a client where a large group's members are listed.

use super::build::{complex, reference, string};
use super::{AttributeDef, Mutability, SchemaDef};

/// The `GroupMember` core schema URN.
pub const GROUP_MEMBER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:GroupMember";
/// The Group extension carrying `membersMetadata`.
pub const GROUP_MEMBERS_EXTENSION_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:groupMembers:2.0:Group";

/// A membership: the group and the member it links; both set when it is created, never
/// changed (a membership is created, read and deleted only).
pub static GROUP_MEMBER: SchemaDef = SchemaDef {
    id: GROUP_MEMBER_SCHEMA,
    name: "GroupMember",
    description: "One membership of a member in a group",
    attributes: &[
        complex(
            "group",
            "The group of the membership.",
            &[
                string("value", "The id of the group.")
                    .mandatory()
                    .mutable(Mutability::Immutable),
                reference("$ref", "The URI of the group.", &["Group"]).read_only(),
            ],
        )
        .mandatory()
        .mutable(Mutability::Immutable),
        complex(
            "member",
            "The member of the membership.",
            &[
                string("value", "The id of the member.")
                    .mandatory()
                    .mutable(Mutability::Immutable),
                reference("$ref", "The URI of the member.", &["User"]).read_only(),
                string("type", "The member's resource type.")
                    .canonical(&["User"])
                    .read_only(),
            ],
        )
        .mandatory()
        .mutable(Mutability::Immutable),
    ],
};

const MEMBERS_METADATA: &[AttributeDef] = &[complex(
    "membersMetadata",
    "How the group's members are represented, and where they are listed.",
    &[
        string("policy", "inline, external or hybrid.")
            .canonical(&["inline", "external", "hybrid"])
            .read_only(),
        reference(
            "ref",
            "The GroupMembers query listing this group's members.",
            &["uri"],
        )
        .read_only(),
    ],
)
.read_only()];

/// The Group extension of the draft: `membersMetadata`.
pub static GROUP_MEMBERS_EXTENSION: SchemaDef = SchemaDef {
    id: GROUP_MEMBERS_EXTENSION_SCHEMA,
    name: "GroupMembersMetadata",
    description: "Group membership metadata",
    attributes: MEMBERS_METADATA,
};
