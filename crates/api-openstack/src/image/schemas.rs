//! Glance's JSON schemas (`/v2/schemas/image(s)`, `/v2/schemas/member(s)`), as Glance
//! serves them for the attributes nubis keeps.

use super::patch::{CONTAINER_FORMATS, DISK_FORMATS};
use serde_json::{Value, json};

fn image() -> Value {
    let s = |d: &str| json!({"type": "string", "readOnly": true, "description": d});
    json!({
        "name": "image",
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image",
                   "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "maxLength": 255,
                     "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image",
                       "enum": ["queued", "saving", "active", "killed", "deleted", "uploading",
                                "importing", "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"],
                           "description": "Scope of image accessibility"},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32,
                         "description": "md5 hash of image contents."},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "maxLength": 64,
                             "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "maxLength": 128,
                              "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
            "owner": {"type": ["null", "string"], "maxLength": 255,
                      "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": true,
                     "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true,
                             "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "enum": CONTAINER_FORMATS.iter().map(|f| Value::from(*f)).chain([Value::Null]).collect::<Vec<_>>(),
                                 "description": "Format of the container"},
            "disk_format": {"type": ["null", "string"], "enum": DISK_FORMATS.iter().map(|f| Value::from(*f)).chain([Value::Null]).collect::<Vec<_>>(),
                            "description": "Format of the disk"},
            "created_at": s("Date and time of image registration"),
            "updated_at": s("Date and time of the last image modification"),
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                     "description": "List of strings related to the image"},
            "direct_url": s("URL to access the image file kept in external store"),
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": s("An image self url"),
            "file": s("An image file url"),
            "stores": s("Store in which image data resides.  Only present when the operator has enabled multiple stores."),
            "schema": s("An image schema url"),
            "locations": {"type": "array", "items": {"type": "object"},
                          "description": "A set of URLs to access the image file kept in external store"},
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

fn member() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                       "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        },
    })
}

/// The schema document `which` names (`image`, `images`, `member`, `members`).
pub fn schema(which: &str) -> Value {
    match which {
        "images" => json!({
            "name": "images",
            "properties": {
                "images": {"type": "array", "items": image()},
                "schema": {"type": "string"},
                "first": {"type": "string"},
                "next": {"type": "string"},
            },
            "links": [
                {"rel": "first", "href": "{first}"},
                {"rel": "next", "href": "{next}"},
                {"rel": "describedby", "href": "{schema}"},
            ],
        }),
        "member" => member(),
        "members" => json!({
            "name": "members",
            "properties": {
                "members": {"type": "array", "items": member()},
                "schema": {"type": "string"},
            },
            "links": [{"rel": "describedby", "href": "{schema}"}],
        }),
        _ => image(),
    }
}
