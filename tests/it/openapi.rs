//! The published OpenAPI description and the node agree: every endpoint, asked a valid and an
//! invalid question, answers with a status code the description lists for it, and a body that
//! validates against the schema described for that code.

use crate::common::{wait_for, TestNet};
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

/// The methods a client may send, against which the description is checked path by path.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// `template` with each path parameter replaced by a value its schema accepts.
fn instantiate(doc: &Value, template: &str) -> String {
    parameters(doc, template).iter().filter(|p| p["in"] == "path").fold(template.to_owned(), |path, p| {
        let name = p["name"].as_str().unwrap();
        let value = match p["schema"]["type"].as_str() {
            Some("integer") => p["schema"]["minimum"].as_i64().unwrap_or(0).to_string(),
            _ => "0".repeat(64),
        };
        path.replace(&format!("{{{name}}}"), &value)
    })
}

/// The parameters described for the GET of `template` (every parameterised path is a GET).
fn parameters(doc: &Value, template: &str) -> Vec<Value> {
    doc["paths"][template]["get"]["parameters"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_path_serves_only_its_described_methods_and_every_described_bound_is_enforced() {
    let net = TestNet::start("openapi-generated", 1);
    let node = &net.nodes[0];
    let doc = description(&net);
    let client = reqwest::blocking::Client::new();
    let token = node.token().expect("the node wrote its cookie");
    let send = |method: &str, path: &str| {
        let answer = client
            .request(method.parse().unwrap(), format!("{}{path}", node.url))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .unwrap();
        let allow = answer.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        (answer.status().as_u16(), allow, answer.json::<Value>().unwrap_or(Value::Null))
    };
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths described", paths.len());
    let mut asked = 0;
    for (template, operations) in paths {
        let path = instantiate(&doc, template);
        let described: Vec<String> =
            operations.as_object().unwrap().keys().filter(|k| *k != "parameters").map(|k| k.to_uppercase()).collect();
        for method in METHODS.iter().filter(|m| !described.iter().any(|d| d == *m)) {
            let (code, allow, body) = send(method, &path);
            assert_eq!(code, 405, "{method} {path}: {body}");
            assert!(body["error"].is_string(), "{method} {path}: {body}");
            let allow = allow.unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
            let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
            for method in &described {
                assert!(allowed.contains(&method.as_str()), "{path}: Allow {allow:?} lacks {method}");
            }
            asked += 1;
        }
        // Every integer parameter's bounds, one past each side and the bound itself.
        for parameter in parameters(&doc, template) {
            let (name, schema) = (parameter["name"].as_str().unwrap(), &parameter["schema"]);
            let mut cases: Vec<(i64, bool)> = Vec::new();
            if schema["type"] == "integer" {
                if let Some(min) = schema["minimum"].as_i64() {
                    cases.extend([(min - 1, false), (min, true)]);
                }
                if let Some(max) = schema["maximum"].as_i64() {
                    cases.extend([(max + 1, false), (max, true)]);
                }
            } else if schema["pattern"].is_string() {
                // A value no pattern of 64 hex digits accepts.
                let (code, _, body) = send("GET", &path.replace(&"0".repeat(64), "zz"));
                assert_eq!(code, 400, "GET {template} with {name}=zz: {body}");
            }
            for (value, valid) in cases {
                let asked_path = match parameter["in"].as_str() {
                    Some("path") => template.replace(&format!("{{{name}}}"), &value.to_string()),
                    _ => format!("{path}?{name}={value}"),
                };
                let (code, _, body) = send("GET", &asked_path);
                if valid {
                    assert!(code == 200 || code == 404, "GET {asked_path} is within the bounds: {code} {body}");
                } else {
                    assert_eq!(code, 400, "GET {asked_path} is beyond the described bounds: {body}");
                }
                check(&doc, "get", template, &asked_path, code, &body);
                asked += 1;
            }
        }
    }
    eprintln!("{asked} generated requests");
}
