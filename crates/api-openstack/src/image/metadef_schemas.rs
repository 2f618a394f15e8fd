//! Glance's metadata definition schemas (`/v2/schemas/metadefs/...`), as Glance serves them
//! (`glance/api/v2/metadef_*.py`, `get_schema`), for the attributes nubis keeps.

use serde_json::{Value, json};

fn time(what: &str) -> Value {
    json!({"type": "string", "readOnly": true, "format": "date-time",
           "description": format!("Date and time of {what}")})
}

fn property_type() -> Value {
    let types = json!([
        "array", "boolean", "integer", "number", "object", "string", null
    ]);
    json!({
        "type": "object",
        "required": ["title", "type"],
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "operators": {"type": "array", "items": {"type": "string"}},
            "type": {"type": "string", "enum": types},
            "required": {"$ref": "#/definitions/stringArray"},
            "minimum": {"type": "number"},
            "maximum": {"type": "number"},
            "maxLength": {"$ref": "#/definitions/positiveInteger"},
            "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
            "pattern": {"type": "string", "format": "regex"},
            "enum": {"type": "array"},
            "readonly": {"type": "boolean"},
            "default": {},
            "items": {"type": "object", "properties": {
                "type": {"type": "string", "enum": types},
                "enum": {"type": "array"},
            }},
            "maxItems": {"$ref": "#/definitions/positiveInteger"},
            "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
            "uniqueItems": {"type": "boolean", "default": false},
            "additionalItems": {"type": "boolean"},
        },
    })
}

fn definitions() -> Value {
    json!({
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
        "property": {"type": "object", "additionalProperties": property_type()},
    })
}

fn association() -> Value {
    json!({
        "name": "resource_type_association",
        "properties": {
            "name": {"type": "string", "maxLength": 80,
                     "description": "Resource type names should be aligned with Heat resource types whenever possible: http://docs.openstack.org/developer/heat/template_guide/openstack.html"},
            "prefix": {"type": "string", "maxLength": 80,
                       "description": "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :)."},
            "properties_target": {"type": "string", "maxLength": 80,
                                  "description": "Some resource types allow more than one key / value pair per instance.  For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity."},
            "created_at": time("resource type association"),
            "updated_at": time("the last resource type association modification"),
        },
        "required": ["name"],
        "additionalProperties": false,
    })
}

fn object() -> Value {
    json!({
        "name": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"},
            "schema": {"readOnly": true, "type": "string"},
            "self": {"readOnly": true, "type": "string"},
            "created_at": time("object creation"),
            "updated_at": time("the last object modification"),
        },
        "required": ["name"],
        "definitions": definitions(),
        "additionalProperties": false,
    })
}

fn property() -> Value {
    let mut p = property_type();
    p["name"] = json!("property");
    p["required"] = json!(["name", "title", "type"]);
    p["definitions"] = definitions();
    p["additionalProperties"] = json!(false);
    p
}

fn tag() -> Value {
    json!({
        "name": "tag",
        "properties": {
            "name": {"type": "string", "maxLength": 255},
            "created_at": time("tag creation"),
            "updated_at": time("the last tag modification"),
        },
        "required": ["name"],
        "additionalProperties": false,
    })
}

fn namespace() -> Value {
    json!({
        "name": "namespace",
        "properties": {
            "namespace": {"type": "string", "maxLength": 80, "description": "The unique namespace text."},
            "display_name": {"type": "string", "maxLength": 80, "description": "The user friendly name for the namespace. Used by UI if available."},
            "description": {"type": "string", "maxLength": 500, "description": "Provides a user friendly description of the namespace."},
            "visibility": {"type": "string", "enum": ["public", "private"], "description": "Scope of namespace accessibility."},
            "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
            "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
            "created_at": time("namespace creation"),
            "updated_at": time("the last namespace modification"),
            "schema": {"readOnly": true, "type": "string"},
            "self": {"readOnly": true, "type": "string"},
            "resource_type_associations": {"type": "array", "items": association()["properties"].clone()},
            "properties": {"$ref": "#/definitions/property"},
            "objects": {"type": "array", "items": {"type": "object", "properties": object()["properties"].clone()}},
            "tags": {"type": "array", "items": {"type": "object", "properties": tag()["properties"].clone()}},
        },
        "required": ["namespace"],
        "definitions": definitions(),
        "additionalProperties": false,
    })
}

fn collection(name: &str, key: &str, item: Value, paged: bool) -> Value {
    let mut v = json!({
        "name": name,
        "properties": {
            key: {"type": "array", "items": item},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    });
    if paged {
        v["properties"]["first"] = json!({"type": "string"});
        v["properties"]["next"] = json!({"type": "string"});
        v["links"] = json!([
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ]);
    }
    v
}

/// The schema `/v2/schemas/metadefs/{which}`.
pub fn schema(which: &str) -> Value {
    match which {
        "namespaces" => collection("namespaces", "namespaces", namespace(), true),
        "object" => object(),
        "objects" => collection("objects", "objects", object(), true),
        "property" => property(),
        "properties" => json!({
            "name": "properties",
            "properties": {
                "properties": {"$ref": "#/definitions/property"},
                "schema": {"type": "string"},
            },
            "definitions": definitions(),
            "links": [{"rel": "describedby", "href": "{schema}"}],
        }),
        "tag" => tag(),
        "tags" => collection("tags", "tags", tag(), true),
        "resource_type" => association(),
        "resource_types" => collection(
            "resource_type_associations",
            "resource_type_associations",
            association(),
            true,
        ),
        _ => namespace(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schemas' names below `/v2/schemas/metadefs/`.
    const NAMES: &[&str] = &[
        "namespace",
        "namespaces",
        "object",
        "objects",
        "property",
        "properties",
        "tag",
        "tags",
        "resource_type",
        "resource_types",
    ];

    #[test]
    fn every_schema_is_named_as_glance_names_it() {
        for which in NAMES {
            let want = match *which {
                "resource_type" => "resource_type_association",
                "resource_types" => "resource_type_associations",
                w => w,
            };
            assert_eq!(schema(which)["name"], want);
        }
    }
}
