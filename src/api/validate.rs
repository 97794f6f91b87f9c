//! Validation of trigger bodies with Reverb's (Laravel's) 422 answer format
//! (http-api.md §5.3), and the Pusher limits answered with 400 (§5.4).

use serde_json::{Map, Value};

/// Field → messages, in the order the fields were checked.
#[derive(Default, Debug)]
pub struct Errors(Map<String, Value>);

impl Errors {
    fn add(&mut self, field: &str, message: String) {
        let list = self
            .0
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(message.into());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_json(self) -> String {
        Value::Object(self.0).to_string()
    }
}

fn shown(field: &str) -> String {
    field.replace('_', " ")
}

/// `field` must be a non-empty string.
pub fn required_string(errors: &mut Errors, body: &Map<String, Value>, field: &str) {
    match body.get(field) {
        None => errors.add(field, format!("The {} field is required.", shown(field))),
        Some(Value::String(s)) if s.is_empty() => {
            errors.add(field, format!("The {} field is required.", shown(field)))
        }
        Some(Value::String(_)) => {}
        Some(_) => errors.add(
            field,
            format!("The {} field must be a string.", shown(field)),
        ),
    }
}

/// `field`, when present, must be a string.
pub fn optional_string(errors: &mut Errors, body: &Map<String, Value>, field: &str) {
    if let Some(value) = body.get(field) {
        if !value.is_string() {
            errors.add(
                field,
                format!("The {} field must be a string.", shown(field)),
            );
        }
    }
}

/// The channel target of a single event: `channels` (array of strings) or `channel`.
pub fn channels(errors: &mut Errors, body: &Map<String, Value>) {
    match body.get("channels") {
        None if !body.contains_key("channel") => {
            errors.add(
                "channels",
                "The channels field is required when channel is not present.".into(),
            );
            errors.add(
                "channel",
                "The channel field is required when channels is not present.".into(),
            );
            return;
        }
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    let field = format!("channels.{i}");
                    errors.add(&field, format!("The {field} field must be a string."));
                }
            }
        }
        Some(_) => errors.add("channels", "The channels field must be an array.".into()),
    }
    // `channel` keeps its `string` rule even when `channels` wins (Reverb's rules are
    // `required_without:channels|string`): `{"channels":[…],"channel":5}` is a 422.
    optional_string(errors, body, "channel");
}

/// A validated event ready to publish.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: String,
    pub channels: Vec<String>,
    pub socket_id: Option<String>,
    pub info: Option<String>,
}

/// Validate the body of `POST …/events`.
pub fn event(body: &Map<String, Value>) -> Result<Event, Errors> {
    let mut errors = Errors::default();
    required_string(&mut errors, body, "name");
    required_string(&mut errors, body, "data");
    channels(&mut errors, body);
    optional_string(&mut errors, body, "socket_id");
    optional_string(&mut errors, body, "info");
    if !errors.is_empty() {
        return Err(errors);
    }
    let channels = match body.get("channels") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => body
            .get("channel")
            .and_then(Value::as_str)
            .map(|c| vec![c.to_string()])
            .unwrap_or_default(),
    };
    Ok(Event {
        name: str_field(body, "name"),
        data: str_field(body, "data"),
        channels,
        socket_id: body
            .get("socket_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        info: body.get("info").and_then(Value::as_str).map(str::to_string),
    })
}

/// Validate the body of `POST …/batch_events`.
pub fn batch(body: &Map<String, Value>) -> Result<Vec<Event>, Errors> {
    let mut errors = Errors::default();
    let items = match body.get("batch") {
        None => {
            errors.add("batch", "The batch field is required.".into());
            return Err(errors);
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add("batch", "The batch field must be an array.".into());
            return Err(errors);
        }
    };
    let empty = Map::new();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item = item.as_object().unwrap_or(&empty);
        let mut item_errors = Errors::default();
        required_string(&mut item_errors, item, "name");
        required_string(&mut item_errors, item, "data");
        required_string(&mut item_errors, item, "channel");
        optional_string(&mut item_errors, item, "socket_id");
        optional_string(&mut item_errors, item, "info");
        if item_errors.is_empty() {
            events.push(Event {
                name: str_field(item, "name"),
                data: str_field(item, "data"),
                channels: vec![str_field(item, "channel")],
                socket_id: item
                    .get("socket_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                info: item.get("info").and_then(Value::as_str).map(str::to_string),
            });
        }
        for (field, messages) in item_errors.0 {
            let prefixed = format!("batch.{i}.{field}");
            for message in messages.as_array().into_iter().flatten() {
                let text = message.as_str().unwrap_or_default().replace(
                    &format!("The {} field", shown(&field)),
                    &format!("The {prefixed} field"),
                );
                errors.add(&prefixed, text);
            }
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

fn str_field(body: &Map<String, Value>, field: &str) -> String {
    body.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Longest channel or event name under Pusher's limits.
pub const MAX_NAME: usize = 200;
pub const MAX_CHANNELS: usize = 100;
pub const MAX_BATCH: usize = 10;

/// The 400 text when an event breaks Pusher's limits.
pub fn limits(event: &Event) -> Option<&'static str> {
    if event.channels.len() > MAX_CHANNELS {
        return Some("Too many channels: at most 100 per event.");
    }
    let too_long = |s: &str| s.chars().count() > MAX_NAME;
    if too_long(&event.name) || event.channels.iter().any(|c| too_long(c)) {
        return Some("Name too long: at most 200 characters.");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn event_messages() {
        let e = event(&obj(json!({}))).unwrap_err().into_json();
        assert_eq!(
            e,
            r#"{"name":["The name field is required."],"data":["The data field is required."],"channels":["The channels field is required when channel is not present."],"channel":["The channel field is required when channels is not present."]}"#
        );
        let e = event(&obj(
            json!({"name":"a","data":{},"channel":"x","socket_id":5}),
        ))
        .unwrap_err()
        .into_json();
        assert_eq!(
            e,
            r#"{"data":["The data field must be a string."],"socket_id":["The socket id field must be a string."]}"#
        );
        let ok = event(&obj(
            json!({"name":"a","data":"{}","channels":["x","y"],"channel":"z"}),
        ))
        .unwrap();
        assert_eq!(ok.channels, vec!["x", "y"]);
        let e = event(&obj(
            json!({"name":"a","data":"d","channels":["x"],"channel":5}),
        ))
        .unwrap_err()
        .into_json();
        assert_eq!(e, r#"{"channel":["The channel field must be a string."]}"#);
    }

    #[test]
    fn batch_messages() {
        let e = batch(&obj(json!({"batch":[{"data":"x","channel":"c"}]})))
            .unwrap_err()
            .into_json();
        assert_eq!(
            e,
            r#"{"batch.0.name":["The batch.0.name field is required."]}"#
        );
        assert_eq!(batch(&obj(json!({"batch":[]}))).unwrap().len(), 0);
    }
}
