//! The committed OpenAPI document (`openapi/v1.json`) must be what the code
//! generates. `CONFAB_UPDATE_OPENAPI=1 cargo test -p confab-api --test
//! openapi` rewrites it.

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/v1.json");

fn generated() -> String {
    let doc = confab_api::openapi();
    let mut text = serde_json::to_string_pretty(&doc).expect("the document serialises");
    text.push('\n');
    text
}

#[test]
fn committed_document_is_current() {
    let text = generated();
    if std::env::var("CONFAB_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(PATH, &text).expect("writing openapi/v1.json");
        return;
    }
    let committed = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        committed == text,
        "openapi/v1.json is stale (or missing): run \
         `CONFAB_UPDATE_OPENAPI=1 cargo test -p confab-api --test openapi` and commit the file"
    );
}

#[test]
fn every_operation_is_documented() {
    let doc = serde_json::to_value(confab_api::openapi()).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 6, "{} paths", paths.len());
    for (path, item) in paths {
        assert!(path.starts_with("/v1/"), "{path}");
        for (method, op) in item.as_object().unwrap() {
            let where_ = format!("{method} {path}");
            assert!(op["operationId"].is_string(), "{where_}: operationId");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{where_}: tags"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{where_}: a success response"
            );
            for code in ["401", "403", "429"] {
                assert!(responses.contains_key(code), "{where_}: {code}");
            }
        }
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("secret_key"));
}
