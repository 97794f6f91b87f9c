//! `POST …/users/{user_id}/terminate_connections` (http-api.md §8): close every
//! connection of the app signed in as that user or holding a presence membership with
//! that user id, on every shard. An unknown user is a 200 with nobody closed.

use crate::http::response::Response;
use crate::pusher::errors::close;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

pub async fn terminate(state: &ShardState, app: usize, user: &str) -> Response {
    // The user's sockets on other nodes (scaling): queued even while Redis is down.
    crate::scaling::publish(state, |s| crate::scaling::envelope::terminate(s, app, user));
    let closed = state
        .mesh
        .map_reduce(
            ShardMsg::Terminate {
                app,
                user: user.to_string(),
            },
            0,
            |acc, msg| match msg {
                ShardMsg::Count(n) => acc + n,
                _ => acc,
            },
        )
        .await;
    crate::debug!(
        "[shard {}] Terminated {closed} connection(s) of user {user}",
        state.id
    );
    Response::json(200, "{}")
}

/// Close this shard's connections of `user`; returns how many.
pub fn local(state: &ShardState, app: usize, user: &str) -> u64 {
    let (code, reason) = close::TERMINATED;
    let mut closed = 0;
    for conn in state.connections.borrow().values() {
        if conn.app.index != app || conn.is_closing() {
            continue;
        }
        let signed_in = conn.user.borrow().as_deref() == Some(user);
        let member = conn
            .subscriptions
            .borrow()
            .values()
            .any(|s| s.presence_key.as_deref() == Some(user));
        if signed_in || member {
            conn.close(code, reason);
            closed += 1;
        }
    }
    closed
}
