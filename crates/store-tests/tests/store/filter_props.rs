//! Property: any filter body, valid or not, gives the same answer on both engines. A
//! valid one selects the same rows in the same order from the same data; an invalid one
//! is the same 422 from the shared parser; no filter makes a store fail.
//!
//! Both stores are seeded once with varied metadata (nested objects, arrays, numbers
//! beyond f64 precision, awkward keys and strings) drawn from the same value pools the
//! filters are drawn from, so generated conditions actually select something.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use engram_core::filter::{self, Resource};
use engram_core::model::{Changes, ListQuery, NewMessage, NewSession};
use engram_core::{Error, Store, time, validate};
use engram_store_tests::EnginePair;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value, json};

use crate::common::page;

const CASES: u32 = 3000;

/// Keys both the data and the filters use: dotted, quoted, empty, non-ASCII.
const KEYS: [&str; 11] = [
    "a", "tag", "n", "nested", "list", "x.y", "q\"k", "b\\s", "", "ü", "missing",
];

const TEXTS: [&str; 20] = [
    "red",
    "Red",
    "RED",
    "7",
    " 7 ",
    "2.5",
    "-3",
    "1e3",
    "2024-01-15",
    "2024-01-15T10:00:00Z",
    "100%",
    "a_b",
    "_",
    "%",
    "\\",
    "",
    "ü",
    "ÜNÏ",
    "true",
    "null",
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        5 => proptest::sample::select(&TEXTS[..3]).prop_map(String::from),
        4 => proptest::sample::select(&TEXTS[..]).prop_map(String::from),
        1 => "[a-zA-Z0-9_%\\\\ü\u{0}]{0,4}",
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (0i64..4).prop_map(|n| json!(n)),
        2 => (-4i64..12).prop_map(|n| json!(n)),
        1 => proptest::sample::select(vec![
            json!(2.5),
            json!(-0.0),
            json!(0.1),
            json!(1e300),
            json!(-1.5e-300),
            json!(7.0),
            json!(9_007_199_254_740_993i64),
            json!(9_007_199_254_740_992i64),
            json!(i64::MIN),
            json!(u64::MAX),
        ]),
    ]
    .boxed()
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        2 => any::<bool>().prop_map(Value::Bool),
        4 => number(),
        5 => text().prop_map(Value::String),
    ]
    .boxed()
}

/// Mostly the first three keys, so conditions meet the data often.
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(&KEYS[..3]),
        2 => proptest::sample::select(&KEYS[..]),
    ]
    .prop_map(String::from)
    .boxed()
}

/// Any JSON value, nested a few levels.
fn document() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

fn metadata() -> BoxedStrategy<Map<String, Value>> {
    let value = prop_oneof![3 => scalar(), 1 => document()];
    proptest::collection::vec((key(), value), 0..5)
        .prop_map(|kv| kv.into_iter().collect())
        .boxed()
}

const OPERATORS: [&str; 10] = [
    "gt",
    "gte",
    "lt",
    "lte",
    "ne",
    "in",
    "contains",
    "icontains",
    "eq",
    "AND",
];

/// An operand of any shape, biased towards the ones an operator expects.
fn operand() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => scalar(),
        1 => Just(json!("*")),
        2 => proptest::collection::vec(scalar(), 0..4).prop_map(Value::Array),
        1 => document(),
        2 => proptest::sample::select(vec![
            "2024-01-01", "2024-01-15T10:00:00Z", "2024-01-15T10:00:00.000001+00:00",
            "2023-12-31 23:59:59", "2100-01-01T00:00:00-05:00", "not a date",
        ]).prop_map(|s| json!(s)),
    ]
    .boxed()
}

fn operations() -> BoxedStrategy<Value> {
    proptest::collection::vec((proptest::sample::select(&OPERATORS[..]), operand()), 1..3)
        .prop_map(|ops| Value::Object(ops.into_iter().map(|(op, v)| (op.to_string(), v)).collect()))
        .boxed()
}

/// The value under `metadata`: containment documents, per-key operations, wildcards,
/// and shapes the language rejects.
fn metadata_condition() -> BoxedStrategy<Value> {
    let per_key = prop_oneof![
        3 => scalar(),
        1 => document(),
        3 => operations(),
        1 => Just(json!("*")),
    ];
    prop_oneof![
        6 => proptest::collection::vec((key(), per_key), 0..3)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => document().prop_map(|d| json!({"contains": d})),
        1 => Just(json!({"ne": null})),
        1 => scalar(),
    ]
    .boxed()
}

const COLUMNS: [&str; 10] = [
    "peer_id",
    "session_id",
    "workspace_id",
    "token_count",
    "created_at",
    "id",
    "is_active",
    "metadata",
    "metadata",
    "bogus",
];

/// Any column with any value: mostly rejected, which is what it is for.
fn wild_condition() -> BoxedStrategy<(String, Value)> {
    proptest::sample::select(&COLUMNS[..])
        .prop_flat_map(|column| {
            let value = if column == "metadata" {
                metadata_condition()
            } else {
                prop_oneof![
                    3 => operand(),
                    3 => operations(),
                    1 => proptest::sample::select(&PEERS[..]).prop_map(|p| json!(p)),
                ]
                .boxed()
            };
            value.prop_map(move |v| (column.to_string(), v))
        })
        .boxed()
}

/// `{op: operand}` with operators that take such an operand.
fn typed_ops(operand: BoxedStrategy<Value>, text: bool) -> BoxedStrategy<Value> {
    let ops: &[&str] = if text {
        &["gt", "gte", "lt", "lte", "ne", "contains", "icontains"]
    } else {
        &["gt", "gte", "lt", "lte", "ne"]
    };
    let single =
        (proptest::sample::select(ops), operand.clone()).prop_map(|(op, v)| json!({ op: v }));
    prop_oneof![
        4 => single,
        1 => proptest::collection::vec(operand, 0..3).prop_map(|v| json!({"in": v})),
        1 => Just(json!({"ne": null})),
    ]
    .boxed()
}

/// A condition that is usually valid for messages (and for sessions where the column
/// exists), with operands drawn from the seeded data.
fn condition() -> BoxedStrategy<(String, Value)> {
    let name = prop_oneof![
        3 => proptest::sample::select(&PEERS[..]).prop_map(|p| json!(p)),
        1 => text().prop_map(Value::String),
    ]
    .boxed();
    let names = prop_oneof![
        2 => name.clone(),
        1 => typed_ops(name.clone(), true),
        1 => proptest::collection::vec(name, 0..3).prop_map(Value::Array),
    ];
    let count = prop_oneof![(0i64..14).prop_map(|n| json!(n)), Just(json!("5"))].boxed();
    let time = proptest::sample::select(&TIMES[..])
        .prop_map(|t| json!(t))
        .boxed();
    let metadata = proptest::collection::vec(
        (
            key(),
            prop_oneof![
                3 => scalar(),
                3 => typed_ops(scalar(), true),
                1 => document(),
                1 => Just(json!("*")),
            ],
        ),
        1..3,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    prop_oneof![
        2 => names.clone().prop_map(|v| ("peer_id".to_string(), v)),
        1 => names.prop_map(|v| ("id".to_string(), v)),
        1 => prop_oneof![count.clone(), typed_ops(count, false)]
            .prop_map(|v| ("token_count".to_string(), v)),
        1 => prop_oneof![time.clone(), typed_ops(time, false)]
            .prop_map(|v| ("created_at".to_string(), v)),
        1 => any::<bool>().prop_map(|b| ("is_active".to_string(), json!(b))),
        5 => metadata.prop_map(|v| ("metadata".to_string(), v)),
    ]
    .boxed()
}

/// A whole `filters` body: conditions plus `AND`/`OR`/`NOT` lists, nested past the
/// allowed depth now and then, with the odd non-list or non-object where a list belongs.
/// One body in six draws its conditions from `wild_condition`.
fn filters() -> BoxedStrategy<Value> {
    prop_oneof![5 => tree(condition()), 1 => tree(wild_condition())].boxed()
}

fn tree(condition: BoxedStrategy<(String, Value)>) -> BoxedStrategy<Value> {
    let flat = proptest::collection::vec(condition.clone(), 1..3)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    flat.prop_recursive(7, 40, 3, move |inner| {
        (
            proptest::collection::vec(condition.clone(), 0..2),
            proptest::sample::select(vec!["AND", "OR", "OR", "NOT"]),
            prop_oneof![
                8 => proptest::collection::vec(inner, 1..3).prop_map(Value::Array),
                1 => Just(json!([])),
                1 => scalar(),
                1 => Just(json!([1, "x"])),
            ],
        )
            .prop_map(|(conds, logical, list)| {
                let mut map: Map<String, Value> = conds.into_iter().collect();
                map.insert(logical.to_string(), list);
                Value::Object(map)
            })
    })
    .boxed()
}

const PEERS: [&str; 5] = ["alice", "bob", "Bob", "carol_1", "d-%"];

const TIMES: [&str; 5] = [
    "2024-01-15T10:00:00Z",
    "2024-01-15T10:00:00.000001Z",
    "2023-12-31T23:59:59Z",
    "2024-03-01T00:00:00Z",
    "2024-01-15T10:00:00Z",
];

/// Messages of session `s` and the sessions of workspace `w`, drawn once from a fixed seed.
struct Seed {
    messages: Vec<NewMessage>,
    sessions: Vec<NewSession>,
}

fn seed() -> Seed {
    let mut runner = runner(1);
    // Stored as the HTTP layer stores metadata: NUL bytes stripped, keys in jsonb order.
    let mut draw = |s: BoxedStrategy<Map<String, Value>>| match validate::canonical(Value::Object(
        s.new_tree(&mut runner).expect("draw").current(),
    )) {
        Value::Object(m) => m,
        _ => unreachable!("an object stays an object"),
    };
    let messages = (0..40)
        .map(|i| NewMessage {
            public_id: format!("m{i:02}"),
            content: format!("m{i:02}"),
            peer: PEERS[i % PEERS.len()].into(),
            metadata: draw(metadata()),
            token_count: (i as i64 * 7) % 13,
            created_at: time::parse(TIMES[i % TIMES.len()]),
        })
        .collect();
    let sessions = (0..12)
        .map(|i| NewSession {
            name: format!("s{i:02}"),
            changes: Changes {
                metadata: Some(draw(metadata())),
                configuration: None,
            },
            peers: vec![],
        })
        .collect();
    Seed { messages, sessions }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2000,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

async fn load(store: &Arc<dyn Store>, seed: &Seed) {
    for s in &seed.sessions {
        store
            .get_or_create_session("w", s.clone())
            .await
            .expect("seed session");
    }
    for m in &seed.messages {
        store
            .create_messages("w", "s", vec![m.clone()])
            .await
            .expect("seed message");
    }
}

/// What one engine answers for one filter: the listed names in order, or the error.
async fn answer(
    store: &Arc<dyn Store>,
    resource: Resource,
    query: ListQuery,
) -> Result<Vec<String>, String> {
    let outcome = match resource {
        Resource::Message => store.list_messages("w", "s", query).await.map(|p| {
            (
                p.total,
                p.items.into_iter().map(|m| m.content).collect::<Vec<_>>(),
            )
        }),
        _ => store
            .list_sessions("w", query)
            .await
            .map(|p| (p.total, p.items.into_iter().map(|s| s.id).collect())),
    };
    match outcome {
        Ok((total, names)) if total as usize == names.len() => Ok(names),
        Ok((total, names)) => Err(format!("total {total} but {} rows", names.len())),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// How many generated filters ran on the engines, and how many of those selected some
/// but not all rows: the property means little if most filters are rejected or trivial.
#[derive(Default)]
struct Tally {
    ran: AtomicUsize,
    selective: AtomicUsize,
}

fn check(
    stores: &[Arc<dyn Store>; 2],
    handle: &tokio::runtime::Handle,
    filters: &Value,
    tally: &Tally,
) -> Result<(), TestCaseError> {
    for resource in [Resource::Message, Resource::Session] {
        let parsed = match filter::parse(resource, filters) {
            Ok(parsed) => parsed,
            Err(Error::Unprocessable(_)) => continue,
            Err(other) => {
                return Err(TestCaseError::fail(format!(
                    "{resource:?}: parse gave {other:?}, not a 422"
                )));
            }
        };
        let query = |reverse| ListQuery {
            filter: parsed.clone(),
            page: page(1, 100),
            reverse,
        };
        let [a, b] = tokio::task::block_in_place(|| {
            handle.block_on(async {
                [
                    answer(&stores[0], resource, query(false)).await,
                    answer(&stores[1], resource, query(false)).await,
                ]
            })
        });
        prop_assert!(a.is_ok(), "{resource:?} on SQLite failed: {a:?}");
        prop_assert!(b.is_ok(), "{resource:?} on PostgreSQL failed: {b:?}");
        prop_assert_eq!(&a, &b, "{:?}: SQLite vs PostgreSQL", resource);
        let rows = a.as_ref().map(Vec::len).unwrap_or_default();
        let all = match resource {
            Resource::Message => 40,
            _ => 13,
        };
        tally.ran.fetch_add(1, Ordering::Relaxed);
        if rows > 0 && rows < all {
            tally.selective.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_agree_on_generated_filters() {
    let Some(pair) = EnginePair::open().await else {
        return;
    };
    let sqlite = pair.sqlite.clone();
    let postgres: Arc<dyn Store> = pair.postgres.clone();
    let data = seed();
    load(&sqlite, &data).await;
    load(&postgres, &data).await;
    let stores = [sqlite, postgres];
    let handle = tokio::runtime::Handle::current();
    let tally = Tally::default();
    // Inputs this property found once, kept so a change of generator cannot lose them.
    for found in [
        json!({"AND": [{"AND": [{"peer_id": "\u{0}"}]}]}),
        json!({"metadata": {"tag": 9_007_199_254_740_993i64}, "NOT": [{"created_at": TIMES[0]}]}),
    ] {
        if let Err(e) = check(&stores, &handle, &found, &tally) {
            panic!("{found}: {e}");
        }
    }
    let outcome = runner(CASES).run(&filters(), |f| check(&stores, &handle, &f, &tally));
    pair.close().await;
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let (ran, selective) = (tally.ran.into_inner(), tally.selective.into_inner());
    eprintln!("{CASES} filters: {ran} ran on both engines, {selective} selected some rows");
    assert!(ran >= CASES as usize / 4, "only {ran} filters were valid");
    assert!(
        selective >= CASES as usize / 20,
        "only {selective} filters were selective"
    );
}
