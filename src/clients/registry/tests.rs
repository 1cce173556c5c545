use super::*;

#[test]
fn canonical_json_ignores_key_order() {
    let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":1}],"x":null}}"#).unwrap();
    let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"p":1,"q":2}]},"b":1}"#).unwrap();
    assert_eq!(canonical_json(&a), canonical_json(&b));
    let c: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[{"p":1,"q":2},1]},"b":1}"#).unwrap();
    assert_ne!(
        canonical_json(&a),
        canonical_json(&c),
        "array order matters"
    );
}

#[test]
fn client_ids_are_never_urls() {
    let id = generate_client_id();
    let id = id.as_str();
    assert!(id.starts_with("client_") && id.len() == 7 + 22, "{id}");
    assert!(!id.contains(':') && !id.contains('/'));
    // What a client sends back is parsed as outside input: a generated id must pass.
    assert_eq!(id.parse::<crate::ids::ClientId>().unwrap().as_str(), id);
}
