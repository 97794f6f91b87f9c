//! Fleet-wide query results (scaling.md §5): the requester's merge of every node's
//! answer (§5.1) and the pure builders of this node's own answer (§5.2).
//!
//! The merge rules are Reverb's, kept so that a mixed fleet gives the same result
//! whichever node Laravel asks. Answers come from any node, Reverb's included, so they
//! are taken as loose JSON: PHP encodes an empty array as `[]` where an object is
//! meant, and a value of an unexpected shape counts as empty rather than failing the
//! whole query.

use serde_json::{Map, Value};

use crate::api::stats::Wanted;
use crate::channels::kind::ChannelKind;

/// Attribute keys in the order of http-api.md §6; merged objects list them first.
const ATTRIBUTE_ORDER: [&str; 4] = ["occupied", "user_count", "subscription_count", "cache"];

/// The entries of an answer that should be a JSON object; `[]` and every other
/// non-object are empty.
fn object_entries(answer: &Value) -> impl Iterator<Item = (&String, &Value)> {
    answer.as_object().into_iter().flat_map(|m| m.iter())
}

/// `connections`: the number of distinct socket ids over all answers (union of the
/// answers' keys; Reverb's `array_merge` of string-keyed arrays).
pub fn connections(answers: &[Value]) -> usize {
    let mut ids = std::collections::HashSet::new();
    for answer in answers {
        for (id, _) in object_entries(answer) {
            ids.insert(id.as_str());
        }
    }
    ids.len()
}

/// PHP's truthiness of a decoded JSON value (Reverb ORs `occupied` with `||`).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "0"),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A count as an integer; non-numbers add nothing (Reverb would fail on them).
fn count(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_u64().map(|_| i64::MAX))
        .or_else(|| v.as_f64().map(|f| f as i64))
        .unwrap_or(0)
}

/// `channel`: one attribute object from every node's attribute object. `occupied` is
/// OR-ed, `user_count` and `subscription_count` summed, other keys (`cache`) take the
/// last value seen; only keys that appeared in some answer are present. Keys come in
/// http-api.md §6 order, unknown ones after them in order of first appearance.
pub fn channel(answers: &[Value]) -> Value {
    Value::Object(channel_map(answers))
}

/// [`channel`] as a map.
fn channel_map(answers: &[Value]) -> Map<String, Value> {
    let mut merged: Map<String, Value> = Map::new();
    for answer in answers {
        for (key, value) in object_entries(answer) {
            let new = match key.as_str() {
                "occupied" => {
                    let before = merged.get(key).is_some_and(truthy);
                    Value::Bool(before || truthy(value))
                }
                "user_count" | "subscription_count" => {
                    let before = merged.get(key).map_or(0, count);
                    Value::from(before.saturating_add(count(value)))
                }
                _ => value.clone(),
            };
            merged.insert(key.clone(), new);
        }
    }
    let mut ordered = Map::new();
    for key in ATTRIBUTE_ORDER {
        if let Some(v) = merged.remove(key) {
            ordered.insert(key.to_string(), v);
        }
    }
    ordered.extend(merged);
    ordered
}

/// `channels`: group every answer's `name → attributes` entries by name (in order of
/// first appearance) and merge each group like [`channel`]. A channel that some
/// node listed with no attributes (`{}` or `[]`) is kept, with an empty object.
pub fn channels(answers: &[Value]) -> Map<String, Value> {
    let mut groups: Map<String, Value> = Map::new();
    for answer in answers {
        for (name, attributes) in object_entries(answer) {
            let group = groups
                .entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = group {
                items.push(attributes.clone());
            }
        }
    }
    groups
        .into_iter()
        .map(|(name, group)| {
            let items = match group {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            (name, channel(&items))
        })
        .collect()
}

/// `channel users`: every answer's members concatenated, exact duplicates dropped (first
/// kept), always a list. An answer that is an object (a PHP array with gaps in its keys)
/// contributes its values in order.
pub fn channel_users(answers: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for answer in answers {
        let members: Box<dyn Iterator<Item = &Value>> = match answer {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => Box::new(std::iter::empty()),
        };
        for member in members {
            if seen.insert(canonical(member)) {
                out.push(member.clone());
            }
        }
    }
    out
}

/// Text of a value with object keys sorted, so that two members that differ only in
/// key order count as the same.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// An answer object, or `[]` when it is empty: PHP's `json_encode` of an empty array,
/// what Reverb nodes send and expect (scaling.md §5.2).
pub fn answer_object(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        Value::Array(Vec::new())
    } else {
        Value::Object(map)
    }
}

/// This node's `connections` answer: `{socket_id: {}}` for each local connection.
pub fn connections_answer<I, S>(socket_ids: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    answer_object(
        socket_ids
            .into_iter()
            .map(|id| (id.into(), Value::Object(Map::new())))
            .collect(),
    )
}

/// A channel's attribute object (http-api.md §6) from this node's counts: `occupied`
/// when asked; for an occupied channel `user_count` (presence), `subscription_count`
/// (not presence) and `cache` (cache kind, when `cached` holds the cached message).
pub fn channel_attributes(
    name: &str,
    subscriptions: usize,
    users: usize,
    wanted: Wanted,
    cached: Option<Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let occupied = subscriptions > 0;
    if wanted.occupied {
        out.insert("occupied".into(), occupied.into());
    }
    if occupied {
        let kind = ChannelKind::of(name);
        if wanted.user_count && kind.presence {
            out.insert("user_count".into(), users.into());
        }
        if wanted.subscription_count && !kind.presence {
            out.insert("subscription_count".into(), subscriptions.into());
        }
        if wanted.cache && kind.caches {
            if let Some(message) = cached {
                out.insert("cache".into(), message);
            }
        }
    }
    out
}

/// This node's `channel` answer: the attribute object, `[]` when empty.
pub fn channel_answer(attributes: Map<String, Value>) -> Value {
    answer_object(attributes)
}

/// This node's `channels` answer: `{name: attributes}` (attributes `{}` when empty),
/// `[]` when there is no channel.
pub fn channels_answer<I>(channels: I) -> Value
where
    I: IntoIterator<Item = (String, Map<String, Value>)>,
{
    answer_object(
        channels
            .into_iter()
            .map(|(name, attributes)| (name, Value::Object(attributes)))
            .collect(),
    )
}

/// This node's `channel users` answer: `[{"id": user_id}, …]` for distinct user ids
/// (string comparison, http-api.md §7.3: `7` and `"7"` are one user; the first form
/// seen is kept), in the order given.
pub fn channel_users_answer<I>(user_ids: I) -> Value
where
    I: IntoIterator<Item = Value>,
{
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for id in user_ids {
        let text = match &id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if seen.insert(text) {
            let mut member = Map::new();
            member.insert("id".into(), id);
            out.push(Value::Object(member));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn connections_union_of_keys() {
        let answers = [
            json!({"1.1": {}, "2.2": {}}),
            json!([]),
            json!({"2.2": {}, "3.3": {}}),
            json!("junk"),
            json!([1, 2]),
            json!(null),
        ];
        assert_eq!(connections(&answers), 3);
        assert_eq!(connections(&[]), 0);
        assert_eq!(connections(&[json!([])]), 0);
    }

    #[test]
    fn channel_merge_rules() {
        let answers = [
            json!({"occupied": false}),
            json!({"occupied": true, "user_count": 2}),
            json!([]),
            json!({"occupied": false, "user_count": 3}),
        ];
        let merged = channel_map(&answers);
        assert_eq!(
            Value::Object(merged),
            json!({"occupied": true, "user_count": 5})
        );

        let answers = [
            json!({"subscription_count": 1, "cache": {"event": "a"}}),
            json!({"cache": {"event": "b"}, "occupied": true, "subscription_count": 4}),
        ];
        let merged = channel_map(&answers);
        let keys: Vec<_> = merged.keys().cloned().collect();
        assert_eq!(keys, ["occupied", "subscription_count", "cache"]);
        assert_eq!(
            Value::Object(merged),
            json!({"occupied": true, "subscription_count": 5, "cache": {"event": "b"}})
        );

        // Only keys that appeared.
        assert!(channel_map(&[json!({}), json!([])]).is_empty());
        assert_eq!(
            channel(&[json!({"occupied": false}), json!({})]),
            json!({"occupied": false})
        );
        // Unknown keys after the known ones, last value wins.
        let merged = channel_map(&[
            json!({"zz": 1, "occupied": true}),
            json!({"zz": 2, "aa": 0}),
        ]);
        let keys: Vec<_> = merged.keys().cloned().collect();
        assert_eq!(keys, ["occupied", "zz", "aa"]);
        assert_eq!(merged["zz"], json!(2));
    }

    #[test]
    fn channel_merge_odd_values() {
        let merged = channel_map(&[
            json!({"occupied": 1, "user_count": "x", "subscription_count": 2.0}),
            json!({"occupied": 0, "user_count": 4, "subscription_count": null}),
        ]);
        assert_eq!(
            Value::Object(merged),
            json!({"occupied": true, "user_count": 4, "subscription_count": 2})
        );
        let merged = channel_map(&[json!({"user_count": i64::MAX}), json!({"user_count": 5})]);
        assert_eq!(merged["user_count"], json!(i64::MAX));
        let merged = channel_map(&[json!({"occupied": "0"}), json!({"occupied": ""})]);
        assert_eq!(merged["occupied"], json!(false));
    }

    #[test]
    fn channels_grouped_by_name() {
        let answers = [
            json!({"presence-a": {"user_count": 1}, "orders": {"subscription_count": 2}}),
            json!([]),
            json!({"orders": {"subscription_count": 3}, "empty": []}),
            json!({"presence-a": {"user_count": 2}, "empty": {}}),
            json!(17),
        ];
        let merged = channels(&answers);
        let names: Vec<_> = merged.keys().cloned().collect();
        assert_eq!(names, ["presence-a", "orders", "empty"]);
        assert_eq!(
            Value::Object(merged),
            json!({
                "presence-a": {"user_count": 3},
                "orders": {"subscription_count": 5},
                "empty": {}
            })
        );
        assert!(channels(&[json!([]), json!({})]).is_empty());
    }

    #[test]
    fn channel_users_concatenated_without_exact_duplicates() {
        let answers = [
            json!([{"id": 7}, {"id": "8"}]),
            json!([]),
            json!([{"id": 7}, {"id": "7"}, {"id": "8"}]),
            json!({"0": {"id": 9}, "5": {"id": 7}}),
            json!("junk"),
        ];
        assert_eq!(
            Value::Array(channel_users(&answers)),
            json!([{"id": 7}, {"id": "8"}, {"id": "7"}, {"id": 9}])
        );
        // Same member with keys in another order is a duplicate.
        let answers = [json!([{"id": 1, "x": 2}]), json!([{"x": 2, "id": 1}])];
        assert_eq!(channel_users(&answers).len(), 1);
        assert!(channel_users(&[]).is_empty());
    }

    #[test]
    fn local_answers() {
        assert_eq!(connections_answer(Vec::<String>::new()), json!([]));
        assert_eq!(
            connections_answer(["482915372.91823003", "9.8", "9.8"]),
            json!({"482915372.91823003": {}, "9.8": {}})
        );
        assert_eq!(channel_answer(Map::new()), json!([]));
        assert_eq!(
            channel_answer(obj(json!({"occupied": true}))),
            json!({"occupied": true})
        );
        assert_eq!(channels_answer(Vec::new()), json!([]));
        assert_eq!(
            channels_answer(vec![
                ("a".to_string(), Map::new()),
                ("presence-b".to_string(), obj(json!({"user_count": 1}))),
            ]),
            json!({"a": {}, "presence-b": {"user_count": 1}})
        );
        assert_eq!(channel_users_answer(Vec::new()), json!([]));
        assert_eq!(
            channel_users_answer(vec![json!(7), json!("7"), json!("8"), json!(8)]),
            json!([{"id": 7}, {"id": "8"}])
        );
    }

    #[test]
    fn attributes_follow_http_api_6() {
        let all = Wanted::parse("occupied,user_count,subscription_count,cache");
        let cached = Some(json!({"event": "x", "data": "{}", "channel": "presence-cache-a"}));
        assert_eq!(
            Value::Object(channel_attributes(
                "presence-cache-a",
                3,
                2,
                all,
                cached.clone()
            )),
            json!({"occupied": true, "user_count": 2, "cache": cached.clone().unwrap()})
        );
        assert_eq!(
            Value::Object(channel_attributes("orders", 3, 0, all, cached.clone())),
            json!({"occupied": true, "subscription_count": 3})
        );
        assert_eq!(
            Value::Object(channel_attributes("orders", 0, 0, all, None)),
            json!({"occupied": false})
        );
        let none = Wanted::parse("");
        assert!(channel_attributes("orders", 5, 0, none, None).is_empty());
        assert_eq!(
            Value::Object(channel_attributes(
                "cache-x",
                1,
                0,
                Wanted::parse("cache"),
                None
            )),
            json!({})
        );
        let keys: Vec<_> = channel_attributes("presence-cache-a", 3, 2, all, cached)
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["occupied", "user_count", "cache"]);
    }

    #[test]
    fn local_answers_merge_back() {
        // What two nodes answer merges to the fleet-wide view.
        let a = channels_answer(vec![(
            "presence-r".to_string(),
            channel_attributes("presence-r", 1, 1, Wanted::parse("user_count"), None),
        )]);
        let b = channels_answer(Vec::new());
        let c = channels_answer(vec![(
            "presence-r".to_string(),
            channel_attributes("presence-r", 2, 2, Wanted::parse("user_count"), None),
        )]);
        assert_eq!(
            Value::Object(channels(&[a, b, c])),
            json!({"presence-r": {"user_count": 3}})
        );
    }
}
