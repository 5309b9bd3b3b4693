//! The decide form: fields generated from a suspension's `resume_schema`,
//! and the `resume_data` read back from what the browser posts.
//!
//! Strings, numbers, integers, booleans, enums, arrays of those and nested
//! objects get fields of their own; any other part of a schema (`oneOf`,
//! arrays of objects, a schema without `properties`...) is one JSON text
//! area, which the server parses and the schema then checks like the rest.
//! Field names are the JSON path, dot-separated (`plan.amount`).

use serde_json::{Map, Number, Value};

use hydracore_domain::validation::FieldError;

/// One control of the form, or the start or end of a nested object.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Input(Input),
    /// A nested object's fields follow, until [`Field::GroupEnd`].
    GroupStart {
        legend: String,
        help: Option<String>,
    },
    GroupEnd,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The form field's name: the JSON path, dot-separated.
    pub name: String,
    pub label: String,
    pub help: Option<String>,
    pub required: bool,
    pub control: Control,
    /// What the field shows: the value posted, or the schema's default.
    pub value: String,
    /// Every violation the server found at this field.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    Text,
    /// A number; `integer` steps by one.
    Number {
        integer: bool,
    },
    Checkbox,
    /// One of these values.
    Select(Vec<String>),
    /// Any of these values (an array of an enum).
    Choices(Vec<Choice>),
    /// An array of strings or numbers, one per line.
    Lines {
        numbers: bool,
    },
    /// JSON text for a part of the schema without a control of its own.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub value: String,
    pub checked: bool,
}

/// The name of the form field that carries the whole answer as JSON when
/// the schema has no object properties to make fields of.
pub const WHOLE_ANSWER: &str = "resume_data";

/// Objects nested deeper than this are edited as JSON.
const MAX_DEPTH: usize = 4;

/// The form for `schema` (none: one JSON field for the whole answer).
pub fn fields(schema: Option<&Value>) -> Vec<Field> {
    let mut out = Vec::new();
    match schema.filter(|s| has_properties(s)) {
        Some(schema) => object_fields(schema, "", 0, &mut out),
        None => out.push(Field::Input(Input {
            name: WHOLE_ANSWER.to_owned(),
            label: "Answer (JSON object)".to_owned(),
            help: schema.and_then(description),
            required: false,
            control: Control::Json,
            value: "{}".to_owned(),
            errors: Vec::new(),
        })),
    }
    out
}

fn has_properties(schema: &Value) -> bool {
    schema.get("properties").is_some_and(Value::is_object)
}

fn description(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn object_fields(schema: &Value, prefix: &str, depth: usize, out: &mut Vec<Field>) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, property) in properties {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let label = property
            .get("title")
            .and_then(Value::as_str)
            .map_or_else(|| humanize(key), str::to_owned);
        if schema_type(property) == Some("object") && has_properties(property) && depth < MAX_DEPTH
        {
            out.push(Field::GroupStart {
                legend: label,
                help: description(property),
            });
            object_fields(property, &name, depth + 1, out);
            out.push(Field::GroupEnd);
            continue;
        }
        let control = control(property);
        let value = property
            .get("default")
            .map(|d| shown(d, &control))
            .unwrap_or_default();
        let control = match control {
            Control::Choices(options) => Control::Choices(checked(options, &value)),
            other => other,
        };
        out.push(Field::Input(Input {
            name,
            label,
            help: description(property),
            required: required.contains(&key.as_str()),
            control,
            value,
            errors: Vec::new(),
        }));
    }
}

/// `payment_plan` reads as "Payment plan".
fn humanize(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t),
        // `["string", "null"]`: the one that is not null.
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            (named.len() == 1).then(|| named[0])
        }
        _ => None,
    }
}

fn enum_values(schema: &Value) -> Option<Vec<String>> {
    let values = schema.get("enum")?.as_array()?;
    values
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn control(property: &Value) -> Control {
    if let Some(options) = enum_values(property) {
        return Control::Select(options);
    }
    match schema_type(property) {
        Some("string") => Control::Text,
        Some("number") => Control::Number { integer: false },
        Some("integer") => Control::Number { integer: true },
        Some("boolean") => Control::Checkbox,
        Some("array") => {
            let items = property.get("items").unwrap_or(&Value::Null);
            if let Some(options) = enum_values(items) {
                return Control::Choices(
                    options
                        .into_iter()
                        .map(|value| Choice {
                            value,
                            checked: false,
                        })
                        .collect(),
                );
            }
            match schema_type(items) {
                Some("string") => Control::Lines { numbers: false },
                Some("number" | "integer") => Control::Lines { numbers: true },
                _ => Control::Json,
            }
        }
        _ => Control::Json,
    }
}

fn checked(options: Vec<Choice>, value: &str) -> Vec<Choice> {
    let picked: Vec<&str> = value.lines().collect();
    options
        .into_iter()
        .map(|c| Choice {
            checked: picked.contains(&c.value.as_str()),
            value: c.value,
        })
        .collect()
}

/// How `value` shows in a field with `control`.
fn shown(value: &Value, control: &Control) -> String {
    match (control, value) {
        (Control::Json, v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        (Control::Checkbox, Value::Bool(b)) => if *b { "true" } else { "" }.to_owned(),
        (Control::Lines { .. } | Control::Choices(_), Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

/// What a field's text could not be read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub field: String,
    pub reason: String,
}

/// The `resume_data` the posted `pairs` give for `form`, or the fields
/// whose text could not be read. Empty optional fields are left out, so
/// that the schema, not the form, says what is required. `form` comes
/// back holding what was posted, for showing again.
pub fn read(
    form: &mut [Field],
    pairs: &[(String, String)],
) -> Result<Map<String, Value>, Vec<Unreadable>> {
    let mut data = Map::new();
    let mut unreadable = Vec::new();
    for field in form.iter_mut() {
        let Field::Input(input) = field else { continue };
        let posted: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| *k == input.name)
            .map(|(_, v)| v.as_str())
            .collect();
        input.value = match &input.control {
            Control::Checkbox => if posted.is_empty() { "" } else { "true" }.to_owned(),
            _ => posted.join("\n"),
        };
        if let Control::Choices(options) = &input.control {
            input.control = Control::Choices(checked(options.clone(), &input.value));
        }
        match value_of(input) {
            Ok(Some(value)) if input.name == WHOLE_ANSWER => match value {
                Value::Object(map) => data = map,
                _ => unreadable.push(Unreadable {
                    field: input.name.clone(),
                    reason: "Enter a JSON object".to_owned(),
                }),
            },
            Ok(Some(value)) => insert_at(&mut data, &input.name, value),
            Ok(None) => {}
            Err(reason) => unreadable.push(Unreadable {
                field: input.name.clone(),
                reason,
            }),
        }
    }
    if unreadable.is_empty() {
        Ok(data)
    } else {
        Err(unreadable)
    }
}

fn value_of(input: &Input) -> Result<Option<Value>, String> {
    let text = input.value.trim();
    match &input.control {
        Control::Checkbox => Ok(Some(Value::Bool(!text.is_empty()))),
        Control::Choices(options) => Ok(Some(Value::Array(
            options
                .iter()
                .filter(|c| c.checked)
                .map(|c| Value::String(c.value.clone()))
                .collect(),
        ))),
        _ if text.is_empty() => Ok(None),
        Control::Text | Control::Select(_) => Ok(Some(Value::String(input.value.clone()))),
        Control::Number { integer } => number(text, *integer).map(Some),
        Control::Lines { numbers } => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                if *numbers {
                    number(l, false)
                } else {
                    Ok(Value::String(l.to_owned()))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Some(Value::Array(items))),
        Control::Json => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| format!("Not valid JSON: {e}")),
    }
}

fn number(text: &str, integer: bool) -> Result<Value, String> {
    if integer {
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
    }
    // Parsed as JSON so that the number keeps its digits.
    match serde_json::from_str::<Number>(text) {
        Ok(n) => Ok(Value::Number(n)),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

fn insert_at(data: &mut Map<String, Value>, name: &str, value: Value) {
    let mut parts: Vec<&str> = name.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut object = data;
    for part in parts {
        let entry = object
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner) = entry else { return };
        object = inner;
    }
    object.insert(last.to_owned(), value);
}

/// Puts each violation beside the field it names; those that name no
/// field (a missing property of an object edited as a whole, the answer as
/// a whole) are returned for the top of the form.
pub fn place_errors(form: &mut [Field], errors: &[FieldError]) -> Vec<String> {
    let mut unplaced = Vec::new();
    for error in errors {
        let mut path: Vec<String> = error
            .loc
            .iter()
            .skip(2) // "body", "resume_data"
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        // A missing property is reported at its object: place it at the
        // property's own field when there is one.
        if error.error_type == "missing" || error.error_type == "required" {
            if let Some(property) = quoted(&error.msg) {
                path.push(property);
            }
        }
        if !place(form, &path, &error.msg) {
            unplaced.push(error.msg.clone());
        }
    }
    unplaced
}

/// The field at `path` or the nearest one above it (an array item's
/// error goes to its array's field).
fn place(form: &mut [Field], path: &[String], msg: &str) -> bool {
    for len in (1..=path.len()).rev() {
        let name = path[..len].join(".");
        for field in form.iter_mut() {
            if let Field::Input(input) = field {
                if input.name == name {
                    input.errors.push(msg.to_owned());
                    return true;
                }
            }
        }
    }
    false
}

/// The property a "missing" message names: the JSON string it starts
/// with, read as JSON so that a name holding quotes is read whole.
fn quoted(msg: &str) -> Option<String> {
    let start = msg.find('"')?;
    serde_json::Deserializer::from_str(&msg[start..])
        .into_iter::<String>()
        .next()?
        .ok()
}

/// Puts what could not be read beside its field.
pub fn place_unreadable(form: &mut [Field], unreadable: &[Unreadable]) {
    for u in unreadable {
        place(form, std::slice::from_ref(&u.field), &u.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment_plan() -> Value {
        json!({
            "type": "object",
            "required": ["approved"],
            "properties": {
                "approved": {"type": "boolean", "description": "Approve the plan?"},
                "amount": {"type": "number", "minimum": 0},
                "instalments": {"type": "integer", "default": 3},
                "channel": {"enum": ["email", "sms"]},
                "notes": {"type": "array", "items": {"type": "string"}},
                "days": {"type": "array", "items": {"enum": ["mon", "tue"]}},
                "contact": {"type": "object", "properties": {"name": {"type": "string"}}},
                "extra": {"oneOf": [{"type": "string"}, {"type": "number"}]}
            }
        })
    }

    fn names(form: &[Field]) -> Vec<String> {
        form.iter()
            .map(|f| match f {
                Field::Input(i) => format!("{}:{:?}", i.name, i.control),
                Field::GroupStart { legend, .. } => format!("<{legend}>"),
                Field::GroupEnd => "</>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn each_kind_of_property_gets_its_own_control_and_the_rest_a_json_editor() {
        let form = fields(Some(&payment_plan()));
        assert_eq!(
            names(&form),
            [
                "approved:Checkbox",
                "amount:Number { integer: false }",
                "instalments:Number { integer: true }",
                "channel:Select([\"email\", \"sms\"])",
                "notes:Lines { numbers: false }",
                "days:Choices([Choice { value: \"mon\", checked: false }, Choice { value: \"tue\", checked: false }])",
                "<Contact>",
                "contact.name:Text",
                "</>",
                "extra:Json",
            ]
        );
        let Field::Input(instalments) = &form[2] else {
            panic!("not an input")
        };
        assert_eq!(instalments.value, "3");
        let Field::Input(approved) = &form[0] else {
            panic!("not an input")
        };
        assert!(approved.required);
    }

    #[test]
    fn posted_fields_read_back_as_the_typed_answer_leaving_empty_ones_out() {
        let mut form = fields(Some(&payment_plan()));
        let pairs: Vec<(String, String)> = [
            ("approved", "on"),
            ("amount", "1200.5"),
            ("instalments", ""),
            ("channel", "sms"),
            ("notes", "first\n\nsecond"),
            ("days", "tue"),
            ("contact.name", "Ann"),
            ("extra", "7"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let data = read(&mut form, &pairs).map_err(|e| format!("{e:?}"));
        assert_eq!(
            data.map(Value::Object),
            Ok(json!({
                "approved": true, "amount": 1200.50, "channel": "sms",
                "notes": ["first", "second"], "days": ["tue"],
                "contact": {"name": "Ann"}, "extra": 7
            }))
        );
    }

    #[test]
    fn text_that_is_not_a_number_or_json_is_named_beside_its_field() {
        let mut form = fields(Some(&payment_plan()));
        let pairs = vec![
            ("amount".to_owned(), "lots".to_owned()),
            ("extra".to_owned(), "{".to_owned()),
        ];
        let unreadable = read(&mut form, &pairs).err().unwrap_or_default();
        let fields: Vec<&str> = unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["amount", "extra"]);
    }

    #[test]
    fn without_a_schema_the_answer_is_one_json_object() {
        let mut form = fields(None);
        let pairs = vec![(WHOLE_ANSWER.to_owned(), r#"{"ok": true}"#.to_owned())];
        assert_eq!(
            read(&mut form, &pairs).map(Value::Object).ok(),
            Some(json!({"ok": true}))
        );
        let pairs = vec![(WHOLE_ANSWER.to_owned(), "[1]".to_owned())];
        assert!(read(&mut form, &pairs).is_err());
    }

    #[test]
    fn a_violation_lands_beside_its_field_and_a_missing_property_beside_its_own() {
        let mut form = fields(Some(&payment_plan()));
        let error = |error_type, loc: Vec<Value>, msg: &str| FieldError {
            error_type,
            loc,
            msg: msg.to_owned(),
            input: Value::Null,
            ctx: None,
        };
        let unplaced = place_errors(
            &mut form,
            &[
                error(
                    "minimum",
                    vec![json!("body"), json!("resume_data"), json!("amount")],
                    "-1 is less than the minimum of 0",
                ),
                error(
                    "missing",
                    vec![json!("body"), json!("resume_data")],
                    "\"approved\" is a required property",
                ),
                error(
                    "additional_properties",
                    vec![json!("body"), json!("resume_data")],
                    "Additional properties are not allowed",
                ),
            ],
        );
        let errors = |i: usize| match &form[i] {
            Field::Input(input) => input.errors.clone(),
            _ => Vec::new(),
        };
        assert_eq!(errors(1), ["-1 is less than the minimum of 0"]);
        assert_eq!(errors(0), ["\"approved\" is a required property"]);
        assert_eq!(unplaced, ["Additional properties are not allowed"]);
    }

    #[test]
    fn a_missing_property_whose_name_holds_quotes_is_placed_beside_its_own_field() {
        let name = "a\"><img src=x>";
        let schema = json!({"type": "object", "properties": {name: {"type": "string"}}});
        let mut form = fields(Some(&schema));
        let unplaced = place_errors(
            &mut form,
            &[FieldError {
                error_type: "missing",
                loc: vec![json!("body"), json!("resume_data")],
                msg: format!("{} is a required property", json!(name)),
                input: Value::Null,
                ctx: None,
            }],
        );
        assert_eq!(unplaced, Vec::<String>::new());
        assert!(matches!(&form[0], Field::Input(input) if input.errors.len() == 1));
    }
}
