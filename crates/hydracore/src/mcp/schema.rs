//! The tools' input schemas, made from the types that document the HTTP
//! API's requests (`http::openapi`, utoipa): a field added to a request
//! body shows in its tool at once, so the two cannot drift.
//!
//! utoipa rather than schemars (which rmcp's macros use): the request
//! bodies are parsed by the domain crate from raw JSON, and their one
//! description is the utoipa schema the OpenAPI document is built from.
//! Deriving schemars too would be a second description to keep in step.

use std::sync::LazyLock;

use serde_json::{Map, Value};
use utoipa::{IntoParams, PartialSchema};

/// The OpenAPI document's component schemas, by name.
static COMPONENTS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let (_, doc) = crate::http::api();
    serde_json::to_value(doc)
        .ok()
        .and_then(|mut d| d.pointer_mut("/components/schemas").map(Value::take))
        .and_then(|s| match s {
            Value::Object(schemas) => Some(schemas),
            _ => None,
        })
        .unwrap_or_default()
});

/// An object schema, built up from request bodies and tool fields.
#[derive(Debug, Clone, Default)]
pub struct ObjectSchema {
    properties: Map<String, Value>,
    required: Vec<String>,
}

impl ObjectSchema {
    /// The request body documented as component `name`, e.g.
    /// `CreateWorkflow`.
    pub fn body(name: &str) -> Self {
        Self::default().with_object(COMPONENTS.get(name).cloned().unwrap_or_default())
    }

    /// The properties of schema-only type `T`.
    pub fn of<T: PartialSchema>() -> Self {
        Self::default().with::<T>()
    }

    /// The query parameters `P` as properties, none required.
    pub fn query<P: IntoParams>() -> Self {
        let mut schema = Self::default();
        for parameter in P::into_params(|| None) {
            let Ok(Value::Object(parameter)) = serde_json::to_value(parameter) else {
                continue;
            };
            let Some(name) = parameter.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut property = match parameter.get("schema") {
                Some(Value::Object(s)) => s.clone(),
                _ => Map::new(),
            };
            if let Some(description) = parameter.get("description") {
                property.insert("description".into(), description.clone());
            }
            schema
                .properties
                .insert(name.to_owned(), Value::Object(property));
        }
        schema
    }

    /// Adds the properties of schema-only type `T`.
    pub fn with<T: PartialSchema>(self) -> Self {
        let value = serde_json::to_value(T::schema()).unwrap_or_default();
        self.with_object(value)
    }

    fn with_object(mut self, schema: Value) -> Self {
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (name, property) in properties {
                self.properties.insert(name.clone(), property.clone());
            }
        }
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !self.required.iter().any(|r| r == name) {
                    self.required.push(name.to_owned());
                }
            }
        }
        self
    }

    /// Adds the properties of `other`.
    pub fn merge(mut self, other: ObjectSchema) -> Self {
        self.properties.extend(other.properties);
        for name in other.required {
            if !self.required.contains(&name) {
                self.required.push(name);
            }
        }
        self
    }

    /// Without the properties `names`.
    pub fn without(mut self, names: &[&str]) -> Self {
        self.properties
            .retain(|name, _| !names.contains(&name.as_str()));
        self.required.retain(|name| !names.contains(&name.as_str()));
        self
    }

    /// Only the properties `names`, in that order.
    pub fn only(mut self, names: &[&str]) -> Self {
        let mut kept = Map::new();
        for name in names {
            if let Some(property) = self.properties.remove(*name) {
                kept.insert((*name).to_owned(), property);
            }
        }
        self.properties = kept;
        self.required.retain(|name| names.contains(&name.as_str()));
        self
    }

    /// The JSON Schema, with every `$ref` to the document's components
    /// written out in place: MCP hosts hand the schema to a model as it is.
    pub fn build(self) -> Map<String, Value> {
        let mut schema = Map::new();
        schema.insert("type".into(), "object".into());
        schema.insert("properties".into(), Value::Object(self.properties));
        if !self.required.is_empty() {
            let required = self.required.into_iter().map(Value::String).collect();
            schema.insert("required".into(), Value::Array(required));
        }
        let mut schema = Value::Object(schema);
        inline_refs(&mut schema, 0);
        match schema {
            Value::Object(schema) => schema,
            _ => Map::new(),
        }
    }
}

/// Nesting past this is not followed (the request types do not recurse).
const MAX_REF_DEPTH: usize = 16;

fn inline_refs(value: &mut Value, depth: usize) {
    match value {
        Value::Object(object) => {
            let target = object
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| COMPONENTS.get(name));
            if let (Some(Value::Object(target)), true) = (target, depth < MAX_REF_DEPTH) {
                object.remove("$ref");
                for (key, v) in target {
                    // What the reference itself says (its description) wins.
                    object.entry(key.clone()).or_insert_with(|| v.clone());
                }
                for v in object.values_mut() {
                    inline_refs(v, depth + 1);
                }
            } else {
                for v in object.values_mut() {
                    inline_refs(v, depth);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| inline_refs(v, depth)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_body_is_written_out_without_references() {
        let schema = ObjectSchema::body("CreateWorkflow").build();
        let text = serde_json::to_string(&schema).unwrap_or_default();
        assert!(!text.contains("$ref"), "{text}");
        assert_eq!(
            schema["properties"]["workflow_type"]["enum"][0],
            Value::from("lead")
        );
        assert_eq!(
            schema["required"],
            serde_json::json!(["customer_id", "workflow_type"])
        );
    }
}
