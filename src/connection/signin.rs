//! `pusher:signin` (websocket.md §14, beyond Reverb): binds the connection to a user
//! id so `#server-to-user-{id}` subscriptions and `terminate_connections` work.

use serde_json::{json, Value};

use super::Connection;
use crate::pusher::auth;
use crate::pusher::errors::PusherError;
use crate::pusher::messages;

pub fn signin(conn: &Connection, data: &Value) {
    match verified_user(conn, data) {
        Some((user_id, raw)) => {
            *conn.user.borrow_mut() = Some(user_id);
            let answer = json!({ "user_data": raw }).to_string();
            conn.send_text(&messages::generated(
                "pusher:signin_success",
                Some(&answer),
                None,
            ));
        }
        None => conn.send_error(PusherError::Unauthorized),
    }
}

/// The user id and the raw `user_data`, when the signature and the data are right.
fn verified_user(conn: &Connection, data: &Value) -> Option<(String, String)> {
    let auth = data.get("auth")?.as_str()?;
    // `user_data` must be the string that was signed; an object here was decoded by
    // the double-encoding rule from a client that sent it as an object (unsignable).
    let raw = data.get("user_data")?.as_str()?;
    let message = format!("{}::user::{}", conn.socket_id, raw);
    if !auth::verify(&conn.app.config.secret, &message, auth) {
        return None;
    }
    let user: Value = serde_json::from_str(raw).ok()?;
    let id = match user.as_object()?.get("id")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some((id, raw.to_string()))
}
