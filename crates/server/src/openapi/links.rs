//! OpenAPI links between a create and the operations on what it created, and from a
//! delete back to a create of the same id: a client can follow them, and a stateful
//! fuzzer chains create → use → delete → create again → delete with them, the sequence
//! where a reused id must behave as never used.

use serde_json::{Map, Value, json};

use super::contract::{METHODS, path_params};

/// Gives every operation an id unique in the document (the handlers' function names
/// repeat across modules), prefixed with its tag.
pub fn unique_operation_ids(paths: &mut Map<String, Value>) {
    for item in paths.values_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap_or(method);
            let tag = op["tags"][0].as_str().unwrap_or("engram");
            let prefix = format!("{tag}_");
            if !id.starts_with(&prefix) {
                op["operationId"] = json!(format!("{prefix}{id}"));
            }
        }
    }
}

fn operation_id(paths: &Map<String, Value>, path: &str, method: &str) -> Option<String> {
    Some(
        paths.get(path)?.get(method)?["operationId"]
            .as_str()?
            .to_string(),
    )
}

fn add_link(op: &mut Value, status: &str, name: String, link: Value) {
    if let Some(response) = op.pointer_mut(&format!("/responses/{status}")) {
        response
            .as_object_mut()
            .expect("a response is an object")
            .entry("links")
            .or_insert_with(|| json!({}))[name] = link;
    }
}

/// The `$request.path.*` expressions that carry a path's parameters to another operation.
fn carried(params: &[&str]) -> Map<String, Value> {
    params
        .iter()
        .map(|p| (format!("path.{p}"), json!(format!("$request.path.{p}"))))
        .collect()
}

/// Links every create (a `POST` answering 201 with the new resource's `id`) to the
/// operations on `{create path}/{id}` whose other parameters it knows, and the delete of
/// that item back to the create with the same id.
pub fn add(paths: &mut Map<String, Value>) {
    unique_operation_ids(paths);
    let creates: Vec<String> = paths
        .iter()
        .filter(|(_, item)| item.pointer("/post/responses/201").is_some())
        .map(|(path, _)| path.clone())
        .collect();
    for create in creates {
        let create_id = operation_id(paths, &create, "post").expect("a create has an id");
        let known = path_params(&create);
        let items: Vec<(String, String, String)> = paths
            .keys()
            .filter_map(|path| {
                let rest = path.strip_prefix(&create)?.strip_prefix("/{")?;
                let (param, _) = rest.split_once('}')?;
                let all_known = path_params(path)
                    .iter()
                    .all(|p| *p == param || known.contains(p));
                all_known.then(|| (path.clone(), param.to_string()))
            })
            .flat_map(|(path, param)| {
                let item = &paths[&path];
                METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (path.clone(), m.to_string(), param.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (path, method, param) in items {
            let target = operation_id(paths, &path, &method).expect("operation id");
            let mut parameters = carried(&known);
            parameters.insert(format!("path.{param}"), json!("$response.body#/id"));
            let link = json!({ "operationId": target, "parameters": parameters });
            let create_op = &mut paths[&create]["post"];
            add_link(create_op, "201", target.clone(), link.clone());
            add_link(create_op, "200", target, link);
            if method == "delete" && path.ends_with('}') {
                let back = json!({
                    "operationId": create_id,
                    "parameters": carried(&known),
                    "requestBody": { "id": format!("$request.path.{param}") }
                });
                let delete_op = &mut paths[&path]["delete"];
                add_link(delete_op, "202", create_id.clone(), back);
            }
        }
    }
}
