//! Property: whatever JSON a client sends to a route that writes, the answer is a 2xx or
//! a 4xx in the reference's shape (`{"detail": "..."}` or pydantic's list), never a 500,
//! and a 4xx changed nothing: every list of the workspace reads the same before and after.
//!
//! Bodies start from a valid one per route and are bent: a field replaced by a value of
//! another type, a huge or NUL-carrying or non-ASCII string, deep nesting, numbers out
//! of range, a key removed or added, or the whole body swapped for arbitrary JSON.
//! `POST /v3/keys` is left out: it takes no body (its inputs are query parameters).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

const CASES_PER_ROUTE: u32 = 24;
/// The PocketPaw routes read this workspace, so every route writes here.
const W: &str = "/v3/workspaces/pocketpaw";
const S: &str = "websocket_a";

/// Each writing route with a valid body; `{m}` is the seeded message's id.
fn routes() -> Vec<(Method, String, Value)> {
    let s = format!("{W}/sessions/{S}");
    vec![
        (
            Method::POST,
            "/v3/workspaces".into(),
            json!({"id": "pocketpaw", "metadata": {"k": 1}, "configuration": {}}),
        ),
        (
            Method::PUT,
            W.into(),
            json!({"metadata": {"k": "v"}, "configuration": {"reasoning": {"enabled": true}}}),
        ),
        (
            Method::POST,
            format!("{W}/peers"),
            json!({"id": "q", "metadata": {"a": [1, 2]}, "configuration": {"observe_me": false}}),
        ),
        (
            Method::PUT,
            format!("{W}/peers/p"),
            json!({"metadata": {"x": 1}, "configuration": {"observe_me": true}}),
        ),
        (
            Method::PUT,
            format!("{W}/peers/p/card"),
            json!({"peer_card": ["likes tea", "lives in Paris"]}),
        ),
        (
            Method::POST,
            format!("{W}/sessions"),
            json!({"id": "t", "metadata": {}, "peers": {"p": {"observe_me": true, "observe_others": false}},
                   "configuration": {}}),
        ),
        (
            Method::PUT,
            s.clone(),
            json!({"metadata": {"topic": "x"}, "configuration": {}}),
        ),
        (
            Method::POST,
            format!("{s}/messages"),
            json!({"messages": [
                {"peer_id": "p", "content": "hi", "metadata": {"n": 1}, "created_at": "2024-01-15T10:00:00Z"},
                {"peer_id": "r", "content": "yo"},
            ]}),
        ),
        (
            Method::PUT,
            format!("{s}/messages/{{m}}"),
            json!({"metadata": {"edited": true}}),
        ),
        (
            Method::POST,
            format!("{s}/peers"),
            json!({"r": {"observe_me": false, "observe_others": true}}),
        ),
        (
            Method::PUT,
            format!("{s}/peers"),
            json!({"p": {}, "r": {"observe_others": false}}),
        ),
        (Method::DELETE, format!("{s}/peers"), json!(["r"])),
        (
            Method::PUT,
            format!("{s}/peers/p/config"),
            json!({"observe_me": false, "observe_others": true}),
        ),
        (
            Method::POST,
            format!("{W}/webhooks"),
            json!({"url": "https://example.com/hook"}),
        ),
        (
            Method::POST,
            format!("/api/v1/sessions/{S}/title"),
            json!({"title": "Renamed"}),
        ),
        (
            Method::PUT,
            format!("/api/sessions/{S}/title"),
            json!({"title": "Again"}),
        ),
        // Reads that take a filter body: bent filters are 2xx or a shaped 4xx too.
        (
            Method::POST,
            format!("{s}/messages/list"),
            filtered("peer_id"),
        ),
        (Method::POST, format!("{W}/sessions/list"), filtered("id")),
        (Method::POST, format!("{W}/peers/list"), filtered("id")),
        (Method::POST, "/v3/workspaces/list".into(), filtered("id")),
        (
            Method::POST,
            format!("{W}/search"),
            json!({"query": "hi there", "limit": 5, "filters": {"peer_id": "p"}}),
        ),
        (
            Method::POST,
            format!("{s}/search"),
            json!({"query": "first", "limit": 5, "filters": {"metadata": {"n": {"gte": 1}}}}),
        ),
    ]
}

/// A filter body using every part of the language; `name` is the resource's name column.
fn filtered(name: &str) -> Value {
    json!({"filters": {
        "AND": [{name: {"in": ["p", "r"]}}, {"metadata": {"n": {"gt": 0, "lte": 5}}}],
        "OR": [{"created_at": {"gte": "2024-01-01T00:00:00Z"}}, {"metadata": {"tags": ["a"]}}],
        "NOT": [{name: {"contains": "x"}}],
        "metadata": {"k": "v", "deep": {"a": [1, {"b": true}]}},
    }})
}

fn wild_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "\\PC{0,12}",
        1 => "[a-z\u{0}]{0,6}",
        1 => Just(String::new()),
        1 => proptest::sample::select(vec![100usize, 513, 10_000, 400_000])
            .prop_map(|n| "é".repeat(n / 2)),
        1 => Just("\u{0}".to_string()),
        1 => Just("2024-13-45T99:00:00Z".to_string()),
    ]
    .boxed()
}

fn wild_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => proptest::sample::select(vec![
            json!(0), json!(-1), json!(1.5), json!(1e308), json!(-1e308), json!(i64::MIN),
            json!(i64::MAX), json!(u64::MAX), json!(2_147_483_648i64),
        ]),
        4 => wild_string().prop_map(Value::String),
    ]
    .boxed()
}

/// Arbitrary JSON, sometimes nested far deeper than any limit.
fn wild() -> BoxedStrategy<Value> {
    let nested = wild_scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("\\PC{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![
        6 => nested,
        1 => (2usize..300).prop_map(|depth| {
            (0..depth).fold(json!("bottom"), |v, i| if i % 2 == 0 { json!([v]) } else { json!({"k": v}) })
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Bend {
    /// Replace the value at the n-th pointer of the body.
    Replace(usize, Value),
    /// Remove the n-th pointer's key or element.
    Remove(usize),
    /// Add a key to the n-th object of the body.
    Extra(usize, String, Value),
    Whole(Value),
    /// Spoil the n-th string of the body in one of a few ways that keep its type.
    Garble(usize, u8),
}

fn garble(text: &str, how: u8) -> String {
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    match how % 5 {
        0 => format!("{}\u{0}{}", &text[..mid], &text[mid..]),
        1 => format!("{text}\u{0}"),
        2 => text.repeat(300),
        3 => format!("{text}🦀\u{202e}é"),
        _ => format!(" {} ", text.to_uppercase()),
    }
}

fn bends() -> BoxedStrategy<Vec<Bend>> {
    let bend = prop_oneof![
        5 => (any::<usize>(), wild()).prop_map(|(i, v)| Bend::Replace(i, v)),
        2 => any::<usize>().prop_map(Bend::Remove),
        2 => (any::<usize>(), "\\PC{0,8}", wild()).prop_map(|(i, k, v)| Bend::Extra(i, k, v)),
        1 => wild().prop_map(Bend::Whole),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, how)| Bend::Garble(i, how)),
    ];
    proptest::collection::vec(bend, 1..3).boxed()
}

/// JSON pointers of every value inside `v` (not `v` itself).
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, c)| (escape(k), c)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => vec![],
    };
    for (k, child) in children {
        let p = format!("{at}/{k}");
        out.push(p.clone());
        pointers(child, &p, out);
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn bend(body: &Value, bends: &[Bend]) -> Value {
    let mut body = body.clone();
    for b in bends {
        let mut ps = Vec::new();
        pointers(&body, "", &mut ps);
        let pick = |i: usize| ps.get(i % ps.len().max(1)).cloned();
        match b {
            Bend::Whole(v) => body = v.clone(),
            Bend::Replace(i, v) => match pick(*i) {
                Some(p) => *body.pointer_mut(&p).expect("pointer") = v.clone(),
                None => body = v.clone(),
            },
            Bend::Remove(i) => {
                if let Some(p) = pick(*i) {
                    let (parent, last) = p.rsplit_once('/').expect("pointer");
                    let last = last.replace("~1", "/").replace("~0", "~");
                    match body.pointer_mut(parent).expect("parent") {
                        Value::Object(m) => {
                            m.shift_remove(&last);
                        }
                        Value::Array(items) => {
                            items.remove(last.parse::<usize>().expect("index"));
                        }
                        _ => unreachable!("a parent holds children"),
                    }
                }
            }
            Bend::Garble(i, how) => {
                let strings: Vec<&String> = ps
                    .iter()
                    .filter(|p| body.pointer(p).is_some_and(Value::is_string))
                    .collect();
                if let Some(p) = strings.get(i % strings.len().max(1)) {
                    let at = body.pointer_mut(p).expect("pointer");
                    *at = Value::String(garble(at.as_str().expect("string"), *how));
                }
            }
            Bend::Extra(i, k, v) => {
                let objects: Vec<String> = std::iter::once(String::new())
                    .chain(ps.iter().cloned())
                    .filter(|p| body.pointer(p).is_some_and(Value::is_object))
                    .collect();
                if let Some(p) = objects.get(i % objects.len().max(1))
                    && let Some(Value::Object(m)) = body.pointer_mut(p)
                {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    body
}

/// Everything a client can list in the workspace, to tell whether a request changed it.
async fn snapshot(app: &TestApp) -> Value {
    let s = format!("{W}/sessions/{S}");
    let mut out = serde_json::Map::new();
    for (name, method, path) in [
        (
            "workspaces",
            Method::POST,
            "/v3/workspaces/list".to_string(),
        ),
        ("peers", Method::POST, format!("{W}/peers/list")),
        ("sessions", Method::POST, format!("{W}/sessions/list")),
        ("messages", Method::POST, format!("{s}/messages/list")),
        ("members", Method::GET, format!("{s}/peers")),
        ("config", Method::GET, format!("{s}/peers/p/config")),
        ("card", Method::GET, format!("{W}/peers/p/card")),
        ("webhooks", Method::GET, format!("{W}/webhooks")),
        ("pocketpaw", Method::GET, "/api/v1/sessions".to_string()),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let r = app.call(method, &path, body).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        out.insert(name.into(), r.body);
    }
    Value::Object(out)
}

fn reference_shaped(body: &Value) -> bool {
    let Some(map) = body.as_object() else {
        return false;
    };
    map.len() == 1
        && match &map["detail"] {
            Value::String(_) => true,
            Value::Array(items) => items.iter().all(|e| {
                e.get("type").is_some_and(Value::is_string)
                    && e.get("loc").is_some_and(Value::is_array)
                    && e.get("msg").is_some_and(Value::is_string)
            }),
            _ => false,
        }
}

async fn seed(app: &TestApp) -> String {
    let r = app
        .post(
            &format!("{W}/sessions/{S}/messages"),
            json!({"messages": [{"peer_id": "p", "content": "first"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body[0]["id"].as_str().expect("message id").to_string()
}

async fn generated_bodies_never_fail_or_half_write(app: TestApp) {
    let message = seed(&app).await;
    let handle = tokio::runtime::Handle::current();
    let mut tally = Vec::new();
    for (method, path, valid) in routes() {
        let path = path.replace("{m}", &message);
        // The unbent body is accepted, so the bent ones are near misses of a real request.
        let r = app.call(method.clone(), &path, Some(valid.clone())).await;
        assert!(
            r.status.is_success(),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        let counts = std::cell::Cell::new((0, 0));
        // The workspace as it stands: refreshed after each accepted request, compared
        // after each rejected one.
        let current = std::cell::RefCell::new(snapshot(&app).await);
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: CASES_PER_ROUTE,
                failure_persistence: None,
                max_shrink_iters: 200,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let outcome = runner.run(&bends(), |bends| {
            let body = bend(&valid, &bends);
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    let r = app.call(method.clone(), &path, Some(body.clone())).await;
                    let status = r.status;
                    let (ok, rejected) = counts.get();
                    if status.is_success() {
                        counts.set((ok + 1, rejected));
                        *current.borrow_mut() = snapshot(&app).await;
                        return Ok(());
                    }
                    counts.set((ok, rejected + 1));
                    let short = short(&body);
                    prop_assert!(
                        status.is_client_error(),
                        "{method} {path} {short}: {status} {}",
                        r.body
                    );
                    prop_assert!(
                        reference_shaped(&r.body),
                        "{method} {path} {short}: {status} body {}",
                        r.body
                    );
                    let after = snapshot(&app).await;
                    prop_assert!(
                        *current.borrow() == after,
                        "{method} {path} {short}: {status} yet changed the workspace"
                    );
                    Ok::<(), TestCaseError>(())
                })
            })
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
        tally.push(format!("{method} {path}: {:?}", counts.get()));
    }
    // (accepted, rejected) per route, so a run shows the bodies were not all one kind.
    eprintln!("{}", tally.join("\n"));
}

/// The body as text, cut to a readable length for failure messages.
fn short(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_generated_bodies_never_fail_or_half_write() {
    generated_bodies_never_fail_or_half_write(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_generated_bodies_never_fail_or_half_write() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    generated_bodies_never_fail_or_half_write(app).await;
}
