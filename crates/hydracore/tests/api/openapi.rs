//! The OpenAPI document: pinned by a snapshot, and checked against the
//! seed API reference the original service published.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Body, TestApp};

fn document() -> Value {
    serde_json::to_value(hydracore::http::api().1).expect("serializable")
}

#[test]
fn the_openapi_document_matches_its_snapshot() {
    // As serde_json prints it: insta's own JSON writer would show numbers in
    // serde_json's arbitrary-precision form.
    let text = serde_json::to_string_pretty(&document()).expect("printable");
    insta::assert_snapshot!("openapi", text);
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_is_openapi_3_1() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, "/openapi.json", None, Body::None, &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, document());
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
}

/// One endpoint of the seed reference and the names it mentions.
#[derive(Debug, Default)]
struct SeedEndpoint {
    method: String,
    path: String,
    path_params: BTreeSet<String>,
    query_params: BTreeSet<String>,
    body_fields: BTreeSet<String>,
    response_fields: BTreeSet<String>,
}

/// Reads the rendered seed: a method line, a path line, then parameter
/// lines (`name?Title` or `nameTitle`) under their headings, then JSON
/// examples of the responses.
fn seed() -> Vec<SeedEndpoint> {
    let text = include_str!("../fixtures/workflows-api.txt");
    let lines: Vec<&str> = text.lines().collect();
    let mut endpoints: Vec<SeedEndpoint> = Vec::new();
    let mut section = "";
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).copied().unwrap_or("");
        if ["GET", "POST", "PATCH"].contains(line) && next.starts_with('/') {
            endpoints.push(SeedEndpoint {
                method: line.to_lowercase(),
                path: next.to_owned(),
                ..Default::default()
            });
            section = "";
            continue;
        }
        let Some(endpoint) = endpoints.last_mut() else {
            continue;
        };
        match *line {
            "Path Parameters" => section = "path",
            "Query Parameters" => section = "query",
            "Header Parameters" => section = "header",
            "Response Body" => section = "response",
            _ => {}
        }
        if section == "response" {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix('"') {
                if let Some((key, _)) = rest.split_once("\":") {
                    endpoint.response_fields.insert(key.to_owned());
                }
            }
            continue;
        }
        let Some(name) = parameter_name(line) else {
            continue;
        };
        match section {
            "path" if endpoint.path.contains(&format!("{{{name}}}")) => {
                endpoint.path_params.insert(name);
            }
            // Body fields follow the path parameters without a heading.
            "path" => {
                endpoint.body_fields.insert(name);
            }
            "query" => {
                endpoint.query_params.insert(name);
            }
            _ => {}
        }
    }
    endpoints
}

/// `customer_id?Customer Id` or `instance_idInstance Id` → the name.
fn parameter_name(line: &str) -> Option<String> {
    let first = line.chars().next()?;
    if !first.is_ascii_lowercase() {
        return None;
    }
    let end = line.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))?;
    let rest = &line[end..];
    let rest = rest.strip_prefix('?').unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_uppercase())
        .then(|| line[..end].to_owned())
}

/// Every property name reachable from `schema`, following `$ref`s.
fn property_names(doc: &Value, schema: &Value, into: &mut BTreeSet<String>, depth: usize) {
    if depth > 12 {
        return;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        property_names(doc, &doc["components"]["schemas"][name], into, depth + 1);
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            into.insert(name.clone());
            property_names(doc, property, into, depth + 1);
        }
    }
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            property_names(doc, &schema[key], into, depth + 1);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            property_names(doc, branch, into, depth + 1);
        }
    }
}

#[test]
fn every_seed_path_parameter_and_field_is_in_the_openapi_document() {
    let doc = document();
    let endpoints = seed();
    assert_eq!(endpoints.len(), 12, "the seed documents twelve endpoints");
    let mut missing = Vec::new();
    for e in &endpoints {
        let operation = &doc["paths"][&e.path][&e.method];
        if !operation.is_object() {
            missing.push(format!("{} {}", e.method, e.path));
            continue;
        }
        let parameters: BTreeSet<(String, String)> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["in"].as_str().unwrap_or("").to_owned(),
                    p["name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        for (place, names) in [("path", &e.path_params), ("query", &e.query_params)] {
            for name in names {
                if !parameters.contains(&(place.to_owned(), name.clone())) {
                    missing.push(format!("{} {}: {place} parameter {name}", e.method, e.path));
                }
            }
        }
        let mut body = BTreeSet::new();
        for content in operation["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flat_map(|c| c.values())
        {
            property_names(&doc, &content["schema"], &mut body, 0);
        }
        for name in &e.body_fields {
            if !body.contains(name) {
                missing.push(format!("{} {}: body field {name}", e.method, e.path));
            }
        }
        let mut answered = BTreeSet::new();
        for response in operation["responses"]
            .as_object()
            .into_iter()
            .flat_map(|r| r.values())
        {
            for content in response["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                property_names(&doc, &content["schema"], &mut answered, 0);
            }
        }
        // FastAPI documented a 422 on every route; one with no parameter
        // and no body (the suspended list) cannot answer it, and says so.
        let can_422 = operation["responses"]["422"].is_object();
        for name in &e.response_fields {
            let validation_only = ["detail", "loc", "msg", "type"].contains(&name.as_str());
            if !answered.contains(name) && (can_422 || !validation_only) {
                missing.push(format!("{} {}: response field {name}", e.method, e.path));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing from the OpenAPI document:\n{}",
        missing.join("\n")
    );
    // The parser found what the seed holds, so the check above means something.
    let create = endpoints
        .iter()
        .find(|e| e.method == "post" && e.path.ends_with("/workflows"))
        .unwrap();
    assert!(
        create.body_fields.contains("customer_id") && create.body_fields.contains("workflow_state")
    );
    let list = &endpoints[0];
    assert!(
        list.query_params.contains("per_page") && list.response_fields.contains("workflow_state")
    );
}

#[test]
fn every_operation_documents_its_error_answers() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !(path.starts_with("/internal") || path.starts_with("/v1")) {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let codes: BTreeSet<&str> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for code in ["401", "403", "503"] {
                assert!(codes.contains(code), "{method} {path} lacks {code}");
            }
            assert!(
                operation["security"].is_array(),
                "{method} {path} lacks security"
            );
        }
    }
}

/// The client libraries (clients/), which are built from a copy of the
/// document: clients/README.md says how they keep up with the server.
fn clients_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../clients")
        .join(relative)
}

fn clients_file(relative: &str) -> String {
    let path = clients_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const UPDATE_CLIENTS: &str =
    "run `INSTA_UPDATE=always cargo test -p hydracore --test api openapi` (it rewrites \
     clients/openapi.json and the clients' generated files), then give every new operation a \
     method in both clients (clients/README.md)";

/// `python3 clients/generate.py [--check]`: false when there is no python3 to run it.
fn generate_clients(check: bool) -> bool {
    let mut command = std::process::Command::new("python3");
    command.arg(clients_path("generate.py"));
    if check {
        command.arg("--check");
    }
    match command.output() {
        Err(_) => false,
        Ok(out) => {
            assert!(
                out.status.success(),
                "clients/generate.py: {}\n{UPDATE_CLIENTS}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
    }
}

#[test]
fn the_clients_copy_of_the_openapi_document_is_the_served_one() {
    let served = serde_json::to_string_pretty(&document()).expect("printable") + "\n";
    if std::env::var("INSTA_UPDATE").as_deref() == Ok("always") {
        std::fs::write(clients_path("openapi.json"), &served)
            .expect("clients/openapi.json written");
        assert!(generate_clients(false), "python3 runs clients/generate.py");
        return;
    }
    assert!(
        clients_file("openapi.json") == served,
        "clients/openapi.json is not the document the server serves: {UPDATE_CLIENTS}"
    );
    if !generate_clients(true) {
        println!("NOTE: no python3: the clients' generated files were not checked");
    }
}

#[test]
fn every_operation_the_server_serves_has_a_method_in_each_client() {
    let python = clients_file("python/src/hydracore/_operations.py");
    let typescript = clients_file("typescript/src/operations.ts");
    let mut missing = Vec::new();
    for item in document()["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            if !python.contains(&format!("\n    \"{id}\": ")) {
                missing.push(format!(
                    "{id} (clients/python/src/hydracore/_operations.py)"
                ));
            }
            if !typescript.contains(&format!("\n  {id}: ")) {
                missing.push(format!("{id} (clients/typescript/src/operations.ts)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without a client method:\n{}\n{UPDATE_CLIENTS}",
        missing.join("\n")
    );
}

#[test]
fn the_clients_carry_the_workspace_version() {
    let version = env!("CARGO_PKG_VERSION");
    for (file, line) in [
        (
            "python/pyproject.toml",
            format!("\nversion = \"{version}\"\n"),
        ),
        (
            "python/src/hydracore/_common.py",
            format!("\n__version__ = \"{version}\"\n"),
        ),
        (
            "typescript/package.json",
            format!("\n  \"version\": \"{version}\",\n"),
        ),
        (
            "typescript/src/client.ts",
            format!("\nexport const VERSION = \"{version}\";\n"),
        ),
    ] {
        assert!(
            clients_file(file).contains(&line),
            "clients/{file} lacks {line:?}"
        );
    }
    let lock = clients_file("typescript/package-lock.json");
    assert!(lock.contains(&format!("\"version\": \"{version}\"")));
}
