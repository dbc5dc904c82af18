//! The published OpenAPI description and the node agree: every endpoint, asked a valid and an
//! invalid question, answers with a status code the description lists for it, and a body that
//! validates against the schema described for that code.

mod common;

use common::{wait_for, TestNet};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The OpenAPI document the node serves at `/openapi.json`.
fn description(net: &TestNet) -> Value {
    let (code, doc) = net.nodes[0].get("/openapi.json");
    assert_eq!(code, 200);
    doc
}

/// `schema` with every `$ref` replaced by what it points to in `doc`, and OpenAPI 3.0's
/// `nullable` written as JSON Schema's `"type": [..., "null"]`.
fn to_json_schema(doc: &Value, schema: &Value) -> Value {
    match schema {
        Value::Object(fields) => {
            if let Some(Value::String(pointer)) = fields.get("$ref") {
                let target =
                    doc.pointer(pointer.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling {pointer}"));
                return to_json_schema(doc, target);
            }
            let mut out: Map<String, Value> =
                fields.iter().map(|(key, value)| (key.clone(), to_json_schema(doc, value))).collect();
            if out.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(kind)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([kind, "null"]));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|item| to_json_schema(doc, item)).collect()),
        other => other.clone(),
    }
}

/// Checks one answer: its code is documented for `method template`, and its JSON body validates
/// against the schema documented for that code.
fn check(doc: &Value, method: &str, template: &str, asked: &str, code: u16, body: &Value) {
    let operation = &doc["paths"][template][method];
    assert!(operation.is_object(), "{method} {template} is not described");
    let response = to_json_schema(doc, &operation["responses"][code.to_string()]);
    assert!(response.is_object(), "{method} {asked} answered {code}, which the description does not list: {body}");
    let schema = &response["content"]["application/json"]["schema"];
    let validator = jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("schema of {method} {template}: {e}"));
    let problems: Vec<String> =
        validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(problems.is_empty(), "{method} {asked} → {code}: {problems:?}\n{body}");
}

#[test]
fn every_answer_matches_the_published_description() {
    let net = TestNet::start("openapi", 1);
    let node = &net.nodes[0];
    node.mine();
    let pending = node.submit("grace", "heidi", 7);
    let status = node.status();
    let tip = status["tip"].as_str().unwrap().to_owned();
    let doc = description(&net);
    let zeros = "0".repeat(64);
    // Published is not yet read back: wait until the node's own mempool holds it.
    let looked_up = wait_for("the transfer in the mempool", Duration::from_secs(30), || {
        let (code, body) = node.get(&format!("/transactions/{pending}"));
        (code == 200).then_some(body)
    });
    let address = looked_up["transaction"]["sender"].as_str().expect("the pending transfer's sender").to_owned();

    let gets: Vec<(&str, String, u16)> = vec![
        ("/status", "/status".into(), 200),
        ("/chain", "/chain".into(), 200),
        ("/chain", "/chain?from=x".into(), 400),
        ("/blocks", "/blocks".into(), 200),
        ("/blocks", "/blocks?from=0&limit=2".into(), 200),
        ("/blocks", "/blocks?limit=0".into(), 400),
        ("/blocks/{hash}", format!("/blocks/{tip}"), 200),
        ("/blocks/{hash}", format!("/blocks/{zeros}"), 404),
        ("/blocks/{hash}", "/blocks/zz".into(), 400),
        ("/blocks/height/{height}", "/blocks/height/1".into(), 200),
        ("/blocks/height/{height}", "/blocks/height/99".into(), 404),
        ("/blocks/height/{height}", "/blocks/height/-1".into(), 400),
        ("/mempool", "/mempool".into(), 200),
        ("/mempool", "/mempool?limit=x".into(), 400),
        ("/transactions/{id}", format!("/transactions/{pending}"), 200),
        ("/transactions/{id}", format!("/transactions/{zeros}"), 404),
        ("/transactions/{id}", "/transactions/zz".into(), 400),
        ("/accounts/{address}", format!("/accounts/{address}"), 200),
        ("/accounts/{address}", "/accounts/zz".into(), 400),
        ("/health/live", "/health/live".into(), 200),
        ("/health/ready", "/health/ready".into(), 200),
        ("/metrics/blocks", "/metrics/blocks".into(), 200),
        ("/metrics/blocks", "/metrics/blocks?from=x".into(), 400),
    ];
    for (template, path, expected) in gets {
        let (code, body) = node.get(&path);
        assert_eq!(code, expected, "GET {path}: {body}");
        check(&doc, "get", template, &path, code, &body);
    }

    // Operator endpoints without the token.
    let anonymous = reqwest::blocking::Client::new();
    for path in ["/mine", "/nodes/resolve"] {
        let answer = anonymous.get(format!("{}{path}", node.url)).send().unwrap();
        let code = answer.status().as_u16();
        let body: Value = answer.json().unwrap();
        assert_eq!(code, 401, "GET {path}: {body}");
        check(&doc, "get", path, path, code, &body);
    }

    let posts: Vec<(&str, String, u16)> = vec![
        ("/transactions/new", node.signed_body("ivan", "judy", 3), 201),
        ("/transactions/new", "{\"sender\": 1}".into(), 400),
        ("/transactions/batch", format!("{{\"transactions\": [{}]}}", node.signed_body("ivan", "judy", 4)), 201),
        ("/transactions/batch", "{}".into(), 400),
        ("/nodes/register", "{\"nodes\": [\"ftp://x\"]}".into(), 400),
    ];
    for (path, body, expected) in posts {
        let (code, answer) = node.post(path, body);
        assert_eq!(code, expected, "POST {path}: {answer}");
        check(&doc, "post", path, path, code, &answer);
    }
    let (code, answer) = node.post("/nodes/register", json!({ "nodes": [node.url] }).to_string());
    check(&doc, "post", "/nodes/register", "/nodes/register", code, &answer);
    let (code, answer) = node.get("/mine");
    check(&doc, "get", "/mine", "/mine", code, &answer);
    let (code, answer) = node.get("/nodes/resolve");
    check(&doc, "get", "/nodes/resolve", "/nodes/resolve", code, &answer);
}
