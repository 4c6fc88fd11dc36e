//! Parse rules and the reference's error messages.
use super::*;
use serde_json::json;

fn p(r: Resource, v: Value) -> Result<Option<Filter>, Error> {
    parse(r, &v)
}

fn msg(r: Result<Option<Filter>, Error>) -> String {
    match r {
        Err(Error::Unprocessable(m)) => m,
        other => panic!("expected 422, got {other:?}"),
    }
}

#[test]
fn empty_and_wildcards_mean_no_condition() {
    assert_eq!(p(Resource::Session, json!({})).unwrap(), None);
    assert_eq!(p(Resource::Session, json!({"id": "*"})).unwrap(), None);
    assert_eq!(
        p(Resource::Session, json!({"AND": [{"id": "*"}]})).unwrap(),
        None
    );
    assert_eq!(
        p(Resource::Message, json!({"metadata": {"k": "*"}})).unwrap(),
        None
    );
}

#[test]
fn column_errors_match_the_reference() {
    assert_eq!(
        msg(p(Resource::Message, json!({"id": "x"}))),
        "Column 'id' is not allowed to be filtered on or does not exist on Message"
    );
    assert_eq!(
        msg(p(Resource::Workspace, json!({"peer_id": "x"}))),
        "Column 'peer_id' does not exist on Workspace"
    );
    assert_eq!(
        msg(p(Resource::Peer, json!({"bogus": 1}))),
        "Column 'bogus' is not allowed to be filtered on or does not exist on Peer"
    );
}

#[test]
fn operator_errors() {
    assert_eq!(
        msg(p(
            Resource::Message,
            json!({"peer_id": {"gt": "a", "xx": 1}})
        )),
        "Unsupported comparison operator: xx"
    );
    assert!(
        msg(p(Resource::Message, json!({"peer_id": {"foo": 1}})))
            .starts_with("Invalid filter for column 'peer_id': unsupported operator(s) ['foo']")
    );
    assert_eq!(
        msg(p(Resource::Message, json!({"NOT": null}))),
        "NOT operator cannot be None"
    );
    assert_eq!(
        msg(p(Resource::Message, json!({"OR": {}}))),
        "OR operator must contain a list, got dict"
    );
    assert_eq!(
        msg(p(Resource::Message, json!({"token_count": "abc"}))),
        "Invalid numeric value: abc. Expected a number, got str"
    );
    assert_eq!(
        msg(p(Resource::Session, json!({"is_active": "yes"}))),
        "Invalid value for column 'is_active': expected true or false, got str"
    );
    assert_eq!(
        msg(p(
            Resource::Message,
            json!({"token_count": {"contains": "1"}})
        )),
        "Operator 'contains' requires a text column, but 'token_count' is int"
    );
    assert_eq!(
        msg(p(Resource::Message, json!({"created_at": "nope"}))),
        "Invalid datetime value: nope"
    );
    let deep =
        json!({"AND": [{"AND": [{"AND": [{"AND": [{"AND": [{"AND": [{"peer_id": "a"}]}]}]}]}]}]});
    assert_eq!(
        msg(p(Resource::Message, deep)),
        "Filter nesting exceeds maximum depth of 5"
    );
}

#[test]
fn shapes() {
    assert_eq!(
        p(Resource::Message, json!({"peer_id": ["a", "b"]})).unwrap(),
        Some(Filter::In(
            Column::PeerName,
            vec![Scalar::Text("a".into()), Scalar::Text("b".into())]
        ))
    );
    assert_eq!(
        p(Resource::Message, json!({"metadata": {"n": {"gte": 2}}})).unwrap(),
        Some(Filter::JsonNumber(
            Column::Metadata,
            "n".into(),
            Cmp::Gte,
            2.0
        ))
    );
    assert_eq!(
        p(
            Resource::Message,
            json!({"metadata": {"d": {"lt": "2024-02-01"}}})
        )
        .unwrap(),
        Some(Filter::JsonText(
            Column::Metadata,
            "d".into(),
            Cmp::Lt,
            "2024-02-01".into()
        ))
    );
    assert_eq!(
        p(Resource::Message, json!({"NOT": [{"peer_id": "a"}]})).unwrap(),
        Some(Filter::NotTrue(Box::new(Filter::Compare(
            Column::PeerName,
            Cmp::Eq,
            Scalar::Text("a".into())
        ))))
    );
    assert_eq!(like_pattern("a%_\\"), "%a\\%\\_\\\\%");
}

#[test]
fn oversized_filters_are_rejected() {
    let many: Vec<Value> = (0..1001).map(|i| json!(format!("p{i}"))).collect();
    assert!(
        msg(p(Resource::Message, json!({"peer_id": {"in": many}})))
            .starts_with("Filter is too large")
    );
    let deep = json!({"metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}});
    assert_eq!(
        msg(p(Resource::Message, deep)),
        "Filter nesting exceeds maximum depth of 5"
    );
}
